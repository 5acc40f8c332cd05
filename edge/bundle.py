"""The model bundle inside a `.tflite` file: a JSON metadata entry read without TensorFlow.

A TFLite model is a flatbuffer whose root `Model` table has `buffers` (field 4) and `metadata`
(field 6, a vector of `{name: string, buffer: uint}`); see tensorflow/compiler/mlir/lite/schema/
schema.fbs. edge-ser stores its bundle (labels, feature params, corpora, metrics, ...) as the
metadata entry named `edge_ser_bundle`. The reader below walks just those tables.

The bundle's first entry is the file's digest: SHA-256 of the whole `.tflite` (network, weights, header and
the bundle itself) as written with the digest's own 64 hex digits set to zeros, so that writing it changes
nothing it covers. Loading checks it, and a file that does not match is refused as damaged; a file written
before edge-ser recorded a digest has none and loads unchecked (docs/reliability.md "A damaged model is refused").
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from edge.adaptation import Adaptation
from edge.calibration import Calibration, CoveragePoint, curve_from_dicts
from edge.errors import EdgeSerError
from edge.features import FeatureParams, FeatureParamsError
from edge.files import write_bytes_whole
from edge.windowing import CLIP_HOP_SECONDS

METADATA_NAME = "edge_ser_bundle"
BUNDLE_FORMAT = "edge-ser-bundle/1"
MODEL_BUFFERS, MODEL_METADATA = 4, 6  # field indices in the Model table
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
METADATA_NAME_FIELD, METADATA_BUFFER_FIELD = 0, 1
DIGEST_KEY, DIGEST_PREFIX = "digest", "sha256:"
UNSTAMPED_DIGEST = DIGEST_PREFIX + "0" * 64  # what a writer embeds; stamp_digest fills it in
DIGEST_VALUE = re.compile(DIGEST_PREFIX + "[0-9a-f]{64}")
# A bundle whose first entry holds a digest under a name that is not DIGEST_KEY: that name was damaged.
DIGEST_UNDER_OTHER_NAME = re.compile(rb'\{"[^"]*": "' + DIGEST_PREFIX.encode() + rb'[0-9a-f]{64}"')


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
    layout: str = "fused"  # the LSTM as one fused op, or "unrolled" (for LiteRT's GPU accelerator)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Conversion":
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """`layout` only when not fused: bundles written before it existed read back unchanged."""
        record = asdict(self)
        if self.layout == "fused":
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
    def from_dict(cls, data: dict[str, Any], source: str = "bundle") -> "Bundle":
        return bundle_from_dict(data, source)

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


class _Flatbuffer:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def u16(self, at: int) -> int:
        return int(struct.unpack_from("<H", self.data, at)[0])

    def u32(self, at: int) -> int:
        return int(struct.unpack_from("<I", self.data, at)[0])

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field `index` of the table at `table`, None when absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        slot = 4 + 2 * index
        if slot >= self.u16(vtable):
            return None
        offset = self.u16(vtable + slot)
        return table + offset if offset else None

    def follow(self, at: int) -> int:
        return at + self.u32(at)

    def vector(self, at: int) -> tuple[int, int]:
        """(position of first element, length) of the vector referenced at `at`."""
        start = self.follow(at)
        return start + 4, self.u32(start)

    def tables(self, table: int, index: int) -> list[int]:
        where = self.field(table, index)
        if where is None:
            return []
        first, length = self.vector(where)
        return [self.follow(first + 4 * i) for i in range(length)]


def read_metadata(data: bytes, source: str = "the model") -> dict[str, bytes]:
    """All metadata entries of a TFLite flatbuffer: name -> bytes (`source` names it in errors)."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelBundleError(f"{source} is not a TFLite model (no TFL3 identifier)")
    try:
        fb = _Flatbuffer(data)
        model = fb.follow(0)
        buffers = fb.tables(model, MODEL_BUFFERS)
        entries = {}
        for entry in fb.tables(model, MODEL_METADATA):
            name_field = fb.field(entry, METADATA_NAME_FIELD)
            if name_field is None:
                raise TypeError("a metadata entry without a name")
            name_at = fb.follow(name_field)
            name = data[name_at + 4:name_at + 4 + fb.u32(name_at)].decode()
            buffer_at = fb.field(entry, METADATA_BUFFER_FIELD)
            entries[name] = _buffer_bytes(fb, buffers[fb.u32(buffer_at)] if buffer_at else None)
        return entries
    except (struct.error, IndexError, TypeError, UnicodeDecodeError) as error:
        raise ModelBundleError(f"{source} is damaged: its TFLite flatbuffer is corrupt ({error})") from None


def _buffer_bytes(fb: _Flatbuffer, buffer: int | None) -> bytes:
    if buffer is None:
        return b""
    data_at = fb.field(buffer, BUFFER_DATA)
    if data_at is not None:
        first, length = fb.vector(data_at)
        return fb.data[first:first + length]
    offset_at, size_at = fb.field(buffer, BUFFER_OFFSET), fb.field(buffer, BUFFER_SIZE)
    if offset_at is None or size_at is None:
        return b""
    offset, size = (struct.unpack_from("<Q", fb.data, at)[0] for at in (offset_at, size_at))
    return fb.data[offset:offset + size]


def bundle_from_dict(raw: dict[str, Any], source: str) -> Bundle:
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
    return Bundle(labels=labels, params=params, clip_hop_seconds=float(raw.get("clip_hop_seconds", CLIP_HOP_SECONDS)),
                  calibration=_calibration(raw, source), **_records(raw, source))


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


def read_bundle_json(path: Path) -> Bundle:
    """A training run's bundle.json (the host side) as a Bundle."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ModelBundleError(f"cannot read {path}: {error}") from None
    return bundle_from_dict(raw, str(path))


def write_bundle_json(path: Path, bundle: Bundle) -> None:
    """bundle.json written whole or not at all."""
    write_bytes_whole(path, json.dumps(bundle.to_dict(), indent=2).encode())


def read_bundle(model_path: str | Path) -> Bundle:
    """The bundle of a `.tflite`, once its digest (if it has one) matches the file."""
    path = Path(model_path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelBundleError(f"cannot read model {path}: {error.strerror or error}") from None
    entries = read_metadata(data, str(path))
    if METADATA_NAME not in entries:
        raise ModelBundleError(f"{path} has no edge-ser bundle (was it made by `edge-ser quantize`?)")
    try:
        raw = json.loads(entries[METADATA_NAME])
    except ValueError as error:
        raise ModelBundleError(f"{path} is damaged: its bundle is not valid JSON ({error})") from None
    if isinstance(raw, dict):
        check_digest(data, entries[METADATA_NAME], raw.get(DIGEST_KEY), path)
    return bundle_from_dict(raw, str(path))


def bundle_metadata(record: dict[str, Any]) -> bytes:
    """What a writer embeds as the `edge_ser_bundle` metadata: the record as JSON, its digest entry first and
    still zeros. Once the whole `.tflite` is built, `stamp_digest` fills the digest in."""
    return json.dumps({DIGEST_KEY: UNSTAMPED_DIGEST, **{k: v for k, v in record.items() if k != DIGEST_KEY}}).encode()


def stamp_digest(model: bytes) -> bytes:
    """A finished `.tflite` whose bundle came from `bundle_metadata`, with its digest filled in."""
    unstamped = _digest_entry(UNSTAMPED_DIGEST)
    if model.count(unstamped) != 1:
        raise ModelBundleError("the model holds no unstamped bundle digest (its bundle was not made by bundle_metadata)")
    return model.replace(unstamped, _digest_entry(model_digest(model)))


def model_digest(unstamped_model: bytes) -> str:
    return DIGEST_PREFIX + hashlib.sha256(unstamped_model).hexdigest()


def check_digest(model: bytes, bundle_json: bytes, digest: Any, path: Path) -> None:
    """Refuse a file whose digest does not match it (ModelBundleError: "... is damaged: ...")."""
    if digest is None:
        if DIGEST_UNDER_OTHER_NAME.match(bundle_json):
            raise ModelBundleError(f"{path} is damaged: the name of its digest entry was changed")
        return  # written before edge-ser recorded a digest: nothing to check against
    if not isinstance(digest, str) or not DIGEST_VALUE.fullmatch(digest):
        raise ModelBundleError(f"{path} is damaged: its digest is not a SHA-256 ({str(digest)[:80]!r})")
    stamped = _digest_entry(digest)
    if model.count(stamped) != 1 or model_digest(model.replace(stamped, _digest_entry(UNSTAMPED_DIGEST))) != digest:
        raise ModelBundleError(f"{path} is damaged: its bytes do not match the digest it was written with "
                               "(a copy cut short or altered); copy it again or re-export it")


def _digest_entry(digest: str) -> bytes:
    return json.dumps({DIGEST_KEY: digest})[1:-1].encode()
