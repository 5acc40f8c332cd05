"""`train --split none`: a final fit on every speaker, carrying the estimate of held-out runs of the same recipe."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.cli import app
from tests.support.data import TINY_TRAIN_ARGS

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def corpus_of(run: Path) -> Path:
    return Path(json.loads((run / "bundle.json").read_text())["training_data"]["data"][0])


@pytest.fixture(scope="module")
def final_fit(tiny_run, tmp_path_factory):
    _, runs = tiny_run
    own_runs = tmp_path_factory.mktemp("final-runs")  # not the shared runs folder: its `latest` stays the tiny run
    result = run_cli("train", corpus_of(runs / "tiny"), "--split", "none", "--estimate-from", runs / "tiny",
                     "--runs-dir", own_runs, "--name", "final", *TINY_TRAIN_ARGS)
    assert result.exit_code == 0, result.output
    return result, own_runs / "final", runs / "tiny"


def test_final_fit_trains_on_everything_and_carries_the_held_out_estimate(final_fit):
    result, run, held_out = final_fit
    metrics = json.loads((run / "metrics.json").read_text())
    held_out_test = json.loads((held_out / "metrics.json").read_text())["test"]
    assert metrics["split"]["kind"] == "none" and metrics["split"]["n_test"] == 0
    assert metrics["split"]["n_train"] == 60 and metrics["test"] is None
    assert metrics["seen"]["n"] == 60
    assert metrics["estimate"]["accuracy"] == held_out_test["accuracy"]
    assert metrics["estimate"]["runs"][0]["test_speakers"] == ["ravdess:05"]
    bundle = json.loads((run / "bundle.json").read_text())
    assert bundle["metrics"]["unweighted_accuracy"] == held_out_test["unweighted_accuracy"]
    assert "1 speaker-independent run of" in bundle["metrics_source"] and "tiny" in bundle["metrics_source"]
    report = (run / "report.md").read_text()
    assert "FINAL FIT" in report and "NOT an estimate" in report and "Held-out estimate:" in report
    assert not (run / "confusion.png").exists()
    assert "Held-out estimate:" in result.output and "NOT an estimate" in result.output


def test_quantized_final_fit_records_its_drift_on_the_training_utterances(final_fit, tmp_path):
    from edge.classify import classify_file, true_label
    from edge.runtime import EdgeModel

    _, run, _ = final_fit
    result = run_cli("quantize", run, "--mode", "dynamic", "--output", tmp_path / "final.tflite")
    assert result.exit_code == 0, result.output
    assert "training utterances of a final fit" in result.output
    model = EdgeModel(tmp_path / "final.tflite")
    conversion = model.bundle.conversion
    assert conversion.mode == "dynamic" and "final fit" in conversion.evaluated_on
    files = sorted(corpus_of(run).rglob("*.wav"))
    scored = [p for p in files if true_label(p) and p.stat().st_size > 100]  # not the fixture's broken file
    correct = sum(classify_file(model, p).label == true_label(p) for p in scored)
    assert len(scored) == 60 and correct / 60 == pytest.approx(conversion.accuracy, abs=1.5 / 60)
    info = run_cli("info", "--model", tmp_path / "final.tflite")
    assert "1 speaker-independent run of" in info.output and "conversion: dynamic" in info.output
    assert "trained on: CPU" in info.output  # the device(s) a run trained on travel in the bundle


@pytest.mark.parametrize("extra, message", [
    (["--split", "none", "--validate"], "--validate needs held-out speakers"),
    (["--estimate-from", "RUN"], "--estimate-from is for a final fit"),
    (["--split", "none", "--estimate-from", "RUN", "--epochs", "11"], "trained with a different train_config"),
    (["--split", "none", "--estimate-from", "MISSING"], "not a readable training run"),
])
def test_final_fit_mistakes_are_one_line_and_write_nothing(tiny_run, tmp_path, extra, message):
    _, runs = tiny_run
    substitute = {"RUN": str(runs / "tiny"), "MISSING": str(tmp_path / "nowhere")}
    args = [*TINY_TRAIN_ARGS, *[substitute.get(a, a) for a in extra]]
    result = run_cli("train", corpus_of(runs / "tiny"), "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
