"""`edge-ser train` end to end on a tiny generated corpus (one epoch), and its user errors."""
import json

import pytest
from typer.testing import CliRunner

from edge.cli import app

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)

TINY = ["--epochs", "1", "--lstm-units", "8", "--conv-filters", "8", "--batch-size", "8"]


def run_cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_train_writes_a_complete_run_folder(tiny_run):
    result, runs = tiny_run
    assert result.exit_code == 0, result.output
    run = runs / "tiny"
    for name in ("model.keras", "metrics.json", "bundle.json", "feature_params.json", "report.md",
                 "confusion.png", "curves.png", "history.json"):
        assert (run / name).is_file(), name
    assert (runs / "latest").resolve() == run.resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"]["kind"] == "speaker"
    assert metrics["split"]["test_speakers"] == ["ravdess:05"]
    assert metrics["n_params"] > 0
    assert metrics["test"]["n"] == 12
    for key in ("accuracy", "unweighted_accuracy", "macro_f1", "per_class", "roc_auc_ovr"):
        assert key in metrics["test"]
    assert set(metrics["test"]["per_class"]) == {"neutral", "happy", "sad", "angry"}
    bundle = json.loads((run / "bundle.json").read_text())
    assert bundle["labels"] == ["neutral", "happy", "sad", "angry"]
    assert bundle["corpora"]["ravdess"]["licence"].startswith("CC BY-NC-SA 4.0")
    assert "Split:" in (run / "report.md").read_text()


def test_bad_files_are_named_in_one_warning(tiny_run):
    result, _ = tiny_run
    assert "warning: skipped 2 files" in result.output
    assert "interview take 3.wav" in result.output and "03-01-05-02-02-02-01.wav" in result.output


def test_folder_without_audio_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    result = run_cli("train", tmp_path / "empty", "--runs-dir", tmp_path / "runs", *TINY)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: no audio files (.wav, .flac, ...) found under {tmp_path / 'empty'}"]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("train", tmp_path, "--lstm-units", "a,b").exit_code == 2
    assert run_cli("train").exit_code == 2
    refused = run_cli("train", tmp_path, "--weight-decay", "-0.1")
    assert refused.exit_code == 2 and "--weight-decay" in refused.output and "Traceback" not in refused.output
    warp_on_mfcc = run_cli("train", tmp_path, "--warp-probability", "0.5", "--n-mfcc", "13")
    assert warp_on_mfcc.exit_code == 2 and "needs --n-mfcc 0" in warp_on_mfcc.output
    floor_on_mfcc = run_cli("train", tmp_path, "--dynamic-range-db", "50", "--n-mfcc", "13")
    assert floor_on_mfcc.exit_code == 2 and "floors log-mel bands: it needs n_mfcc 0" in floor_on_mfcc.output
    assert "Traceback" not in floor_on_mfcc.output
    pcen_on_mfcc = run_cli("train", tmp_path, "--pcen-time-constant", "0.4", "--n-mfcc", "13")
    assert pcen_on_mfcc.exit_code == 2 and "it needs n_mfcc 0" in pcen_on_mfcc.output


def test_wide_probability_outside_zero_to_one_is_a_usage_error(tmp_path):
    refused = run_cli("train", tmp_path, "--wide-probability", "1.5")
    assert refused.exit_code == 2 and "--wide-probability" in refused.output and "Traceback" not in refused.output


@pytest.mark.slow
def test_wide_probability_trains_into_the_recipe(tmp_path, ravdess_like):
    result = run_cli("train", ravdess_like, "--runs-dir", tmp_path / "runs", "--name", "wide", "--wide-probability", "1",
                     *TINY)
    assert result.exit_code == 0, result.output
    bundle = json.loads((tmp_path / "runs" / "wide" / "bundle.json").read_text())
    assert bundle["train_config"]["augment"]["wide_probability"] == 1.0
