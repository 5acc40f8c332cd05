"""What the tests make and find: the project's paths, the real corpora (skipping without them), tones whose
time course carries a label, and audio files written in each corpus's naming convention."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

PROJECT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("EDGE_SER_DATA", PROJECT.parent / "shared" / "data"))


def real_corpus(name: str) -> Path:
    """A real corpus folder under ../shared/data (or $EDGE_SER_DATA); skips the test without it."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real corpus {name} not found at {path} (set EDGE_SER_DATA)")
    return path


def emotional_tone(label_index: int, seconds: float = 1.2, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic sound whose *time course* depends on the label (pitch sweep direction and
    amplitude-modulation rate), so it stays learnable after per-window normalisation."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    sweep = (1 if label_index % 2 else -1) * 80 * t / seconds
    f0 = 160 + 10 * rng.standard_normal() + sweep
    phase = 2 * np.pi * np.cumsum(f0) / rate
    signal = sum(np.sin(k * phase) / k for k in range(1, 8))
    modulation = 0.55 + 0.45 * np.sin(2 * np.pi * (2 + 5 * (label_index // 2)) * t + rng.uniform(0, 6))
    return (0.1 * signal * modulation + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def write_audio(path: Path, signal: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.tile(signal[:, None], (1, channels)) if channels > 1 else signal
    soundfile.write(str(path), data, rate, subtype="PCM_16")
    return path


RAVDESS_CODES = ["01", "03", "04", "05"]  # neutral, happy, sad, angry
DEMO = sorted((PROJECT / "assets" / "demo").glob("*.flac"))
ANGRY = PROJECT / "assets" / "demo" / "03-01-05-02-01-01-17.flac"  # a RAVDESS demo clip (actor 17, angry)
TINY_TRAIN_ARGS = ["--epochs", "12", "--lstm-units", "16", "--conv-filters", "8", "--batch-size", "8",
                   "--learning-rate", "1e-2"]
