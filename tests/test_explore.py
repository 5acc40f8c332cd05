"""`edge-ser explore`: counts, plots and per-label statistics of a corpus before training."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.cli import app

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)

PLOTS = ("class_balance.png", "waveforms.png", "spectrograms.png", "feature_distributions.png", "mfcc_by_label.png")


def test_explore_writes_summary_report_and_plots(ravdess_like: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["explore", str(ravdess_like), "--runs-dir", str(tmp_path), "--name", "look"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "look"
    summary = json.loads((folder / "summary.json").read_text())["ravdess"]
    assert summary["files"] == 40 and summary["speakers"] == 5
    assert summary["labels"] == {"angry": 10, "happy": 10, "neutral": 10, "sad": 10}
    assert 1.0 < summary["seconds"]["mean"] < 1.3  # the tones are 1.2 s
    for label, means in summary["per_label"].items():
        assert -40 < means["rms_db"] < -15 and 100 < means["pitch_hz"] < 260, (label, means)
    for plot in PLOTS:
        assert (folder / plot).stat().st_size > 5000, plot
    assert "| angry | 10 |" in (folder / "report.md").read_text()
    assert "ravdess: 40 files, 5 speakers" in result.stdout


def test_explore_refuses_a_folder_without_audio(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["explore", str(tmp_path / "empty"), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 1 and result.stderr.startswith("error:")
