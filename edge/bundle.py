"""The model bundle's records: what a model carries to be used (docs/design.md contract 2), each a typed
dataclass with its dict form. edge/bundle_json.py reads and writes them as JSON (a run's bundle.json, the
metadata inside a `.tflite`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from edge.adaptation import Adaptation
from edge.calibration import Calibration, CoveragePoint, curve_from_dicts
from edge.errors import EdgeSerError
from edge.features import FeatureParams, FeatureParamsError
from edge.settings import CLIP_HOP_SECONDS, DEFAULT_LAYOUT

BUNDLE_FORMAT = "edge-ser-bundle/1"
DIGEST_KEY = "digest"  # the bundle's first entry: the .tflite's digest (edge/bundle_json.py)


class ModelBundleError(EdgeSerError):
    """A model file that is not a TFLite flatbuffer, has no edge-ser bundle, or cannot be used."""


SCORE_NAMES = ("accuracy", "unweighted_accuracy", "macro_f1")


@dataclass(frozen=True, kw_only=True)
class Scores:
    accuracy: float
    unweighted_accuracy: float
    macro_f1: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scores":
        return cls(**{name: float(data[name]) for name in SCORE_NAMES})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class CorpusScores(Scores):
    """One corpus's held-out speakers, scored over the labels that corpus defines."""

    labels: tuple[str, ...]
    n: int  # clips
    runs: int | None = None  # speaker-fold runs averaged (a held-out estimate)
    unweighted_accuracy_shared: float | None = None  # over the six labels every corpus shares

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CorpusScores":
        shared = data.get("unweighted_accuracy_shared")
        return cls(**{name: float(data[name]) for name in SCORE_NAMES}, labels=tuple(data["labels"]), n=int(data["n"]),
                   runs=data.get("runs"), unweighted_accuracy_shared=None if shared is None else float(shared))

    def to_dict(self) -> dict[str, Any]:
        return _without_none({**asdict(self), "labels": list(self.labels)})


@dataclass(frozen=True, kw_only=True)
class CorpusInfo:
    files: int
    speakers: int
    licence: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CorpusInfo":
        return cls(files=int(data["files"]), speakers=int(data["speakers"]), licence=str(data["licence"]))


@dataclass(frozen=True, kw_only=True)
class SplitRecord:
    kind: str  # speaker, random or none (a final fit)
    description: str
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    test_speakers: tuple[str, ...] = ()
    val_speakers: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SplitRecord":
        return cls(**{**data, "test_speakers": tuple(data.get("test_speakers", ())),
                      "val_speakers": tuple(data.get("val_speakers", ()))})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "test_speakers": list(self.test_speakers), "val_speakers": list(self.val_speakers)}


@dataclass(frozen=True, kw_only=True)
class Conversion:
    """What `quantize` measured: the TFLite model against the float one on the same clips."""

    mode: str
    accuracy: float
    float_accuracy: float
    drift_pp: float
    agreement: float
    evaluated_on: str
    layout: str = DEFAULT_LAYOUT  # the LSTM as one fused op, or "unrolled" (LAYOUTS, edge/settings.py)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Conversion":
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """`layout` only when not the default: bundles written before it existed read back unchanged."""
        record = asdict(self)
        if self.layout == DEFAULT_LAYOUT:
            del record["layout"]
        return record


@dataclass(frozen=True, kw_only=True)
class CalibrationReport:
    """What `calibrate` measured on held-out speakers, carried beside the calibration itself."""

    method: str
    fitted_on: str
    ece_before: float
    ece_after: float
    ece_after_per_corpus: dict[str, float] = field(default_factory=dict)
    ece_unseen_corpus: dict[str, float] = field(default_factory=dict)  # each corpus scored by a fit without it
    risk_coverage: dict[str, tuple[CoveragePoint, ...]] = field(default_factory=dict)  # "clips" / "windows"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CalibrationReport":
        return cls(method=str(data["method"]), fitted_on=str(data["fitted_on"]), ece_before=float(data["ece_before"]),
                   ece_after=float(data["ece_after"]), ece_after_per_corpus=dict(data.get("ece_after_per_corpus", {})),
                   ece_unseen_corpus=dict(data.get("ece_unseen_corpus", {})),
                   risk_coverage={kind: tuple(curve_from_dicts(points))
                                  for kind, points in (data.get("risk_coverage") or {}).items()})

    def to_dict(self) -> dict[str, Any]:
        written = {**asdict(self), "risk_coverage": {kind: [asdict(p) for p in points]
                                                     for kind, points in self.risk_coverage.items()}}
        if not self.ece_unseen_corpus:  # bundles written before it existed read back unchanged
            del written["ece_unseen_corpus"]
        return written


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """Everything needed to use a model (docs/design.md contract 2): written by training beside the
    Keras model, carried inside every `.tflite`. Dict-valued fields are the host side's own records
    (train.config's dataclasses, the data a run was made from), kept as written."""

    labels: tuple[str, ...]
    params: FeatureParams
    clip_hop_seconds: float = CLIP_HOP_SECONDS
    calibration: Calibration = Calibration()  # applied to what is reported (edge/calibration.py)
    calibration_report: CalibrationReport | None = None
    conversion: Conversion | None = None
    corpora: dict[str, CorpusInfo] = field(default_factory=dict)
    licence: str | None = None
    label_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)  # label -> the corpora that taught it
    split: SplitRecord | None = None
    metrics: Scores | None = None
    metrics_source: str | None = None
    metrics_per_corpus: dict[str, CorpusScores] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    training_device: str | None = None
    n_params: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    adaptation: Adaptation | None = None  # `edge-ser adapt`'s layer and its record (edge/adaptation.py)
    digest: str | None = None  # the .tflite's digest, checked when it was read (None: written before digests)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "bundle") -> "Bundle":
        """Validate a bundle dict; refuse features this edge-ser cannot reproduce."""
        if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ModelBundleError(f"{source}: unknown bundle format {found!r} (expected {BUNDLE_FORMAT})")
        try:
            params = FeatureParams.from_dict(raw["feature_params"])
        except FeatureParamsError as error:
            raise ModelBundleError(f"{source}: this edge-ser cannot reproduce the model's features: {error}") from None
        except (KeyError, TypeError) as error:
            raise ModelBundleError(f"{source}: bundle has no usable feature_params ({error})") from None
        labels = tuple(raw.get("labels") or ())
        if len(labels) < 2:
            raise ModelBundleError(f"{source}: bundle lists fewer than two labels")
        return cls(labels=labels, params=params, clip_hop_seconds=float(raw.get("clip_hop_seconds", CLIP_HOP_SECONDS)),
                   calibration=_calibration(raw, source), **_records(raw, source))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (bundle.json, the .tflite metadata); empty optional records are left out."""
        out: dict[str, Any] = {"format": BUNDLE_FORMAT, "labels": list(self.labels), "feature_params": self.params.to_dict(),
                               "normalisation": self.params.normalisation, "window_seconds": self.params.window_seconds,
                               "clip_hop_seconds": self.clip_hop_seconds}
        optional = {
            "model_config": self.model_config, "train_config": self.train_config,
            "corpora": {name: asdict(info) for name, info in self.corpora.items()}, "licence": self.licence,
            "label_sources": {label: list(corpora) for label, corpora in self.label_sources.items()},
            "split": self.split.to_dict() if self.split else None, "training_data": self.training_data,
            "training_device": self.training_device, "metrics": self.metrics.to_dict() if self.metrics else None,
            "metrics_source": self.metrics_source,
            "metrics_per_corpus": {name: scores.to_dict() for name, scores in self.metrics_per_corpus.items()},
            "n_params": self.n_params, "versions": self.versions, "created": self.created,
            "calibration": self._calibration_dict(), "conversion": self.conversion.to_dict() if self.conversion else None,
            "adaptation": self.adaptation.to_dict() if self.adaptation else None,
        }
        digest = {DIGEST_KEY: self.digest} if self.digest else {}
        return {**digest, **out, **{key: value for key, value in optional.items() if value not in (None, {})}}

    def _calibration_dict(self) -> dict[str, Any] | None:
        if self.calibration == Calibration() and self.calibration_report is None:
            return None
        applied = {"temperature": self.calibration.temperature,
                   "confidence_map": [list(knot) for knot in self.calibration.confidence_map]}
        if self.calibration.gap_map:
            applied["gap_map"] = [list(knot) for knot in self.calibration.gap_map]
        return {**applied, **(self.calibration_report.to_dict() if self.calibration_report else {})}


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _records(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """The bundle's records, each read into its dataclass; a malformed one is named, not a traceback."""
    records: dict[str, Any] = {}
    readers: dict[str, Callable[[], Any]] = {
        "calibration_report": lambda: CalibrationReport.from_dict(raw["calibration"])
        if "method" in raw.get("calibration", {}) else None,
        "conversion": lambda: Conversion.from_dict(raw["conversion"]) if "conversion" in raw else None,
        "adaptation": lambda: Adaptation.from_dict(raw["adaptation"]) if "adaptation" in raw else None,
        "corpora": lambda: {name: CorpusInfo.from_dict(info) for name, info in raw.get("corpora", {}).items()},
        "label_sources": lambda: {label: tuple(names) for label, names in raw.get("label_sources", {}).items()},
        "split": lambda: SplitRecord.from_dict(raw["split"]) if "split" in raw else None,
        "metrics": lambda: Scores.from_dict(raw["metrics"]) if raw.get("metrics") else None,
        "metrics_per_corpus": lambda: {name: CorpusScores.from_dict(scores)
                                       for name, scores in raw.get("metrics_per_corpus", {}).items()},
    }
    for name, read in readers.items():
        try:
            records[name] = read()
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelBundleError(f"{source}: unusable {name} in the bundle ({type(error).__name__}: {error})") from None
    for name in ("model_config", "train_config", "training_data", "versions"):  # the host side's own dicts
        records[name] = dict(raw.get(name, {}))
    for name in ("licence", "metrics_source", "training_device", "n_params", "created", DIGEST_KEY):
        records[name] = raw.get(name)
    return records


def _calibration(raw: dict[str, Any], source: str) -> Calibration:
    try:
        calibration = Calibration.from_dict(raw.get("calibration"))
    except (TypeError, ValueError) as error:
        raise ModelBundleError(f"{source}: unusable calibration in the bundle ({error})") from None
    probabilities = [y for _, y in calibration.confidence_map + calibration.gap_map] + [x for x, _ in calibration.confidence_map]
    gaps = [x for x, _ in calibration.gap_map]  # log(p1 / p2) >= 0
    if not 0.01 <= calibration.temperature <= 100 or not all(0 <= v <= 1 for v in probabilities) or min(gaps, default=0) < 0:
        raise ModelBundleError(f"{source}: calibration out of range (temperature {calibration.temperature}, "
                               "a map's accuracy outside [0, 1] or a negative gap)")
    return calibration
