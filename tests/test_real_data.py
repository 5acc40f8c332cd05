"""Training on the real corpora in ../shared/data (slow; skipped without the data).

Short runs (a slice, a few epochs): they prove the real-data path end to end. The accuracy
figures of the full runs are measured with `make train` and reported in the README and issues.
"""
import json

import pytest
from typer.testing import CliRunner

from conftest import real_corpus
from edge.cli import app

pytestmark = pytest.mark.slow
SHORT = ["--epochs", "3", "--batch-size", "32"]


def train(tmp_path, *args):
    result = CliRunner().invoke(app, ["train", *map(str, args), "--runs-dir", str(tmp_path), "--name", "run", *SHORT])
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_ravdess_default_split_holds_out_actors_17_to_20(tmp_path):
    metrics = train(tmp_path, real_corpus("ravdess"), "--limit", "320")
    assert metrics["split"]["test_speakers"] == [f"ravdess:{a}" for a in (17, 18, 19, 20)]
    assert metrics["n_params"] <= 150_000
    assert set(metrics["test"]["per_class"]) == {"neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"}


def test_ravdess_and_tess_combined_report_per_corpus(tmp_path):
    metrics = train(tmp_path, real_corpus("ravdess"), real_corpus("tess"), "--limit", "300")
    assert set(metrics["per_corpus"]) == {"ravdess", "tess"}
    assert "tess:YAF" in metrics["split"]["test_speakers"]
    assert metrics["corpora"]["tess"]["licence"].startswith("CC BY-NC-ND 4.0")


def test_tess_random_split_is_labelled_random(tmp_path):
    metrics = train(tmp_path, real_corpus("tess"), "--split", "random", "--limit", "400")
    assert metrics["split"]["kind"] == "random" and "RANDOM" in metrics["split"]["description"]
    assert abs(metrics["test"]["n"] - 80) <= 4
