"""A generated clip for the voice-activity detector: espeak-ng speech between silence and room noise,
and the per-frame decisions a detector makes on it. Used by tests/test_vad.py and
benchmarks/vad_backends.py --agreement."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from edge.audio import read_audio
from edge.vad import FRAME_SAMPLES, VAD_RATE, SpeechDetector, SpeechTracker
from tests.support.nonspeech import nonspeech_clips

SENTENCES = ["I can't believe you did that again.", "The weather is lovely today, let's go outside.",
             "Please leave me alone, I am very tired."]
NOISES = ("pink noise -20 dBFS", "mains hum 50 Hz -20 dBFS", "music box -20 dBFS")


def speech_silence_noise(folder: Path) -> np.ndarray:
    """Three espeak-ng sentences (written into `folder`), each followed by a second of silence and 4 s of noise."""
    noises = dict(nonspeech_clips())
    silence = np.zeros(VAD_RATE, np.float32)
    parts = [silence]
    for i, sentence in enumerate(SENTENCES):
        path = folder / f"say{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), sentence], check=True, timeout=60)
        parts += [read_audio(path, VAD_RATE), silence, noises[NOISES[i]].astype(np.float32)]
    return np.concatenate(parts)


def frame_decisions(detector: SpeechDetector, signal: np.ndarray) -> np.ndarray:
    """Speech or not for every whole 32 ms frame, by Silero's hysteresis as SpeechTracker applies it."""
    tracker = SpeechTracker(detector, signal.size)
    tracker.push(signal)
    frames = signal.size // FRAME_SAMPLES
    return np.array([tracker.share(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES).share == 1.0 for i in range(frames)])
