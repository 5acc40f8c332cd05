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


TINY_TRAIN_ARGS = ["--epochs", "12", "--lstm-units", "16", "--conv-filters", "8", "--batch-size", "8",
                   "--learning-rate", "1e-2"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A real `edge-ser train` on a generated RAVDESS-named corpus: 5 actors x 4 emotions x 3 takes,
    plus one unreadable and one badly named file. Returns (CLI result, runs folder)."""
    from typer.testing import CliRunner

    from edge.cli import app

    root = tmp_path_factory.mktemp("corpus")
    for actor in range(1, 6):
        for e, code in enumerate(RAVDESS_CODES):
            for take in range(1, 4):
                name = f"03-01-{code}-01-0{1 + take % 2}-0{take}-{actor:02d}.wav"
                write_audio(root / f"Actor_{actor:02d}" / name, emotional_tone(e, seed=actor * 10 + take))
    (root / "Actor_01" / "03-01-05-02-02-02-01.wav").write_bytes(b"not audio at all")
    write_audio(root / "Actor_01" / "interview take 3.wav", emotional_tone(0))
    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["train", str(root), "--runs-dir", str(runs), "--name", "tiny", *TINY_TRAIN_ARGS])
    return result, runs
