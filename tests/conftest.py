"""Fixtures the tests make themselves (helpers in tests/support): generated corpora and a tiny training run."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.data import RAVDESS_CODES, TINY_TRAIN_ARGS, emotional_tone, write_audio


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
