"""metrics.json and the held-out estimate as typed records: read, written back the same, averaged."""
import json
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import CorpusInfo, SplitRecord
from tests.support.data import PROJECT

pytestmark = pytest.mark.host


def scores(accuracy: float, labels=("angry", "sad")):
    from train.evaluate import classification_metrics

    targets = np.array([0, 0, 1, 1])
    right = int(round(accuracy * 4))
    predicted = np.array([t if i < right else 1 - t for i, t in enumerate(targets)])
    return classification_metrics(targets, np.eye(2)[predicted], list(labels))


def run_metrics(kind: str, accuracy: float, speakers=("1001",), **extra):
    from train.records import RunMetrics

    test = scores(accuracy) if kind == "speaker" else None
    return RunMetrics(split=SplitRecord(kind=kind, description=f"a {kind} split", test_speakers=speakers),
                      labels=["angry", "sad"], n_params=10, float32_bytes=40, best_epoch=2, epochs_run=2,
                      train_seconds=1.0, total_seconds=2.0, device="CPU", test=test,
                      per_corpus={"cremad": test} if test else {}, shared_labels={"cremad": test} if test else {},
                      label_spaces={"cremad": ["angry", "sad"]},
                      corpora={"cremad": CorpusInfo(files=4, speakers=1, licence="ODbL")}, skipped_files=[], **extra)


def test_a_speaker_run_writes_the_keys_it_always_wrote():
    from train.records import RunMetrics

    written = run_metrics("speaker", 0.75).to_dict()
    assert "val" not in written and "seen" not in written and "estimate" not in written
    assert written["test"]["accuracy"] == 0.75 and written["split"]["test_speakers"] == ["1001"]
    assert RunMetrics.from_dict(json.loads(json.dumps(written))) == RunMetrics.from_dict(written)
    assert json.loads(json.dumps(RunMetrics.from_dict(written).to_dict())) == json.loads(json.dumps(written))


def test_the_estimate_is_the_mean_of_its_runs_and_a_final_fit_carries_it(tmp_path: Path):
    from train.estimate import held_out_estimate
    from train.records import RunMetrics

    runs = [(tmp_path / "fold1", run_metrics("speaker", 0.5, ("1001",))),
            (tmp_path / "fold2", run_metrics("speaker", 1.0, ("1002",)))]
    estimate = held_out_estimate(runs)
    assert estimate.accuracy == pytest.approx(0.75) and estimate.std["accuracy"] == pytest.approx(0.25)
    assert estimate.n == 8 and [r.run for r in estimate.runs] == ["fold1", "fold2"]
    assert "2 held-out speakers" in estimate.source
    assert estimate.per_corpus["cremad"].runs == 2 and estimate.per_corpus["cremad"].accuracy == pytest.approx(0.75)
    final = run_metrics("none", 0.0, (), seen=scores(1.0), estimate=estimate).to_dict()
    assert final["test"] is None and final["estimate"]["runs"][1]["test_speakers"] == ["1002"]
    assert RunMetrics.from_dict(json.loads(json.dumps(final))).estimate == estimate
    assert "estimate" in run_metrics("none", 0.0, ()).to_dict()  # a final fit without one says null


def test_a_damaged_estimate_run_is_a_user_error(tmp_path: Path):
    from edge.discovery import DatasetError
    from train.estimate import check_estimate_runs

    run = tmp_path / "broken"
    run.mkdir()
    (run / "metrics.json").write_text('{"split": {}}')
    (run / "bundle.json").write_text("{}")
    with pytest.raises(DatasetError, match="not a readable training run"):
        check_estimate_runs((run,), {"labels": [], "train_config": {}}, ["cremad"])


RUNS = sorted((PROJECT / "runs").glob("*/metrics.json"))


@pytest.mark.skipif(not RUNS, reason="no training runs in runs/ (they are made by make train, not committed)")
def test_every_run_here_reads_and_writes_back_the_same():
    from train.records import read_metrics

    for path in RUNS:
        assert json.loads(json.dumps(read_metrics(path.parent).to_dict())) == json.loads(path.read_text()), path
