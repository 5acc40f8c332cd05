"""The model bundle as typed records: read, written back unchanged, and a damaged record named."""
import json
from pathlib import Path

import pytest

from edge.bundle import (
    Bundle,
    CalibrationReport,
    Conversion,
    CorpusInfo,
    CorpusScores,
    ModelBundleError,
    Scores,
    SplitRecord,
)
from edge.bundle_json import METADATA_NAME, read_bundle, read_bundle_json, write_bundle_json
from edge.calibration import Calibration, CoveragePoint
from edge.features import FeatureParams
from edge.runtime import MODELS_DIR
from edge.tflite_metadata import read_metadata


@pytest.mark.parametrize("name", ["default", "default-int8", "open", "open-int8"])
def test_every_shipped_bundle_reads_into_records_and_writes_back_unchanged(name: str):
    path = MODELS_DIR / f"{name}.tflite"
    stored = json.loads(read_metadata(path.read_bytes())[METADATA_NAME])
    bundle = read_bundle(path)
    assert bundle.to_dict() == stored
    assert isinstance(bundle.conversion, Conversion) and isinstance(bundle.split, SplitRecord)
    assert all(isinstance(scores, CorpusScores) for scores in bundle.metrics_per_corpus.values())


def a_bundle() -> Bundle:
    curve = (CoveragePoint(0.0, 1.0, 0.4), CoveragePoint(0.5, 0.3, 0.7))
    return Bundle(labels=("angry", "sad"), params=FeatureParams(), calibration=Calibration(confidence_map=((0.5, 0.4),)),
                  calibration_report=CalibrationReport(method="confidence map", fitted_on="a test", ece_before=0.2,
                                                       ece_after=0.03, risk_coverage={"windows": curve}),
                  corpora={"cremad": CorpusInfo(files=10, speakers=2, licence="ODbL")}, licence="open",
                  label_sources={"angry": ("cremad",), "sad": ("cremad",)},
                  split=SplitRecord(kind="speaker", description="held out", test_speakers=("cremad:1001",)),
                  metrics=Scores(accuracy=0.5, unweighted_accuracy=0.4, macro_f1=0.3),
                  metrics_per_corpus={"cremad": CorpusScores(accuracy=0.5, unweighted_accuracy=0.4, macro_f1=0.3,
                                                             labels=("angry", "sad"), n=10)},
                  conversion=Conversion(mode="int8", accuracy=0.5, float_accuracy=0.51, drift_pp=1.0, agreement=0.9,
                                        evaluated_on="clips"))


def test_a_bundle_survives_json_and_back(tmp_path: Path):
    write_bundle_json(tmp_path / "bundle.json", a_bundle())
    assert read_bundle_json(tmp_path / "bundle.json") == a_bundle()
    assert not list(tmp_path.glob("*.tmp"))


def test_an_uncalibrated_bundle_has_no_calibration_entry():
    minimal = Bundle(labels=("a", "b"), params=FeatureParams())
    assert "calibration" not in minimal.to_dict() and "conversion" not in minimal.to_dict()
    assert Bundle.from_dict(minimal.to_dict(), "x") == minimal


@pytest.mark.parametrize("record, damage", [
    ("conversion", {"mode": "int8"}),
    ("corpora", {"cremad": "many files"}),
    ("split", ["speaker"]),
    ("metrics_per_corpus", {"cremad": {"accuracy": 0.5}}),
    ("calibration_report", {"method": "temperature", "fitted_on": "x"}),
])
def test_a_damaged_record_is_named_not_a_traceback(record: str, damage):
    raw = a_bundle().to_dict()
    raw["calibration" if record == "calibration_report" else record] = damage
    with pytest.raises(ModelBundleError, match=f"unusable {record} in the bundle"):
        Bundle.from_dict(raw, "model.tflite")


def test_a_missing_bundle_json_is_a_bundle_error(tmp_path: Path):
    with pytest.raises(ModelBundleError, match="cannot read"):
        read_bundle_json(tmp_path / "bundle.json")


def test_a_gap_map_survives_json_and_a_negative_gap_is_refused(tmp_path: Path):
    from dataclasses import replace

    gapped = replace(a_bundle(), calibration=Calibration(gap_map=((0.0, 0.3), (2.5, 0.8))))
    write_bundle_json(tmp_path / "bundle.json", gapped)
    assert read_bundle_json(tmp_path / "bundle.json") == gapped
    raw = gapped.to_dict()
    raw["calibration"]["gap_map"] = [[-0.5, 0.3], [2.5, 0.8]]
    with pytest.raises(ModelBundleError, match="calibration out of range"):
        Bundle.from_dict(raw, "x")
