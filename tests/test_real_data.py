"""Training on the real corpora in ../shared/data (slow; skipped without the data).

Short runs (a slice, a few epochs): they prove the real-data path end to end. The accuracy
figures of the full runs are measured with `make train` and reported in docs/models.md.
"""
import json

import pytest
from typer.testing import CliRunner

from edge.cli import app
from tests.support.data import real_corpus

pytestmark = [pytest.mark.slow, pytest.mark.host]
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


def test_three_corpora_train_one_model_scored_per_label_space(tmp_path):
    metrics = train(tmp_path, real_corpus("crema-d"), real_corpus("ravdess"), real_corpus("tess"), "--limit", "300")
    assert metrics["per_corpus"]["cremad"]["labels"] == ["neutral", "happy", "sad", "angry", "fear", "disgust"]
    assert len(metrics["per_corpus"]["ravdess"]["labels"]) == 8
    assert metrics["label_spaces"]["tess"] == ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]
    assert set(metrics["shared_labels"]) == {"cremad", "ravdess", "tess"}


def test_cremad_is_recognised_with_its_quirks(tmp_path):
    """Real CREMA-D files: the names are detected, the silent clip and the three same-audio pairs under
    two labels are skipped with their reasons (decoded from a folder of links to those files)."""
    from edge.discovery import discover
    from train.datasets import load_corpora

    root = real_corpus("crema-d")
    found = discover(root)
    assert len(found.utterances) == 6130 and {u.corpus for u in found.utterances} == {"cremad"}
    assert len({u.speaker for u in found.utterances}) == 75
    quirks = ["1076_MTI_SAD_XX", "1006_TIE_HAP_XX", "1006_TIE_NEU_XX", "1013_WSI_DIS_XX", "1013_WSI_SAD_XX",
              "1017_IWW_ANG_XX", "1017_IWW_FEA_XX", "1001_DFA_ANG_XX"]
    links = tmp_path / "AudioWAV"
    links.mkdir()
    for name in quirks:
        (links / f"{name}.ogg").symlink_to(root / "AudioWAV" / f"{name}.ogg")
    dataset = load_corpora((links,), "auto", 0, 16000, None)
    assert [u.path.stem for u in dataset.utterances] == ["1001_DFA_ANG_XX"]
    reasons = {p.stem: why for p, why in dataset.skipped}
    assert reasons["1076_MTI_SAD_XX"].startswith("silent")
    assert all("ambiguous label" in reasons[name] for name in quirks[1:7])
