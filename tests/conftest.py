"""Fixtures the tests make themselves: numpy tones, files named in each corpus's convention."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGE_SER_DATA", PROJECT.parent / "shared" / "data"))


def real_corpus(name: str) -> Path:
    """A real corpus folder under ../shared/data (or $EDGE_SER_DATA); skips the test without it."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real corpus {name} not found at {path} (set EDGE_SER_DATA)")
    return path


def emotional_tone(label_index: int, seconds: float = 1.2, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic tone whose pitch and brightness depend on the label: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 + 45 * label_index + 5 * rng.standard_normal()
    harmonics = 4 + 3 * label_index
    signal = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, harmonics + 1))
    envelope = np.minimum(1, np.minimum(t, t[-1] - t) * 10)
    return (0.3 * signal / harmonics * envelope + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def write_audio(path: Path, signal: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.tile(signal[:, None], (1, channels)) if channels > 1 else signal
    soundfile.write(str(path), data, rate, subtype="PCM_16")
    return path


RAVDESS_CODES = ["01", "03", "04", "05"]  # neutral, happy, sad, angry


@pytest.fixture
def ravdess_like(tmp_path: Path) -> Path:
    """A tiny RAVDESS-named corpus: 5 actors x 4 emotions x 2 statements, mixed rates and formats."""
    root = tmp_path / "ravdess"
    for actor in range(1, 6):
        for e, code in enumerate(RAVDESS_CODES):
            for statement in (1, 2):
                name = f"03-01-{code}-01-0{statement}-01-{actor:02d}"
                rate = 16000 if statement == 1 else 44100
                suffix = ".flac" if actor % 2 else ".wav"
                write_audio(root / f"Actor_{actor:02d}" / f"{name}{suffix}",
                            emotional_tone(e, rate=rate, seed=actor * 10 + statement), rate)
    return root
