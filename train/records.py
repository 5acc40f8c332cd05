"""The records a training run writes for scripts: metrics.json and, in a final fit, its held-out estimate.

Typed like the bundle's records (edge/bundle.py), with `from_dict`/`to_dict` that read and write the
same JSON as before. They live on the host side because only the host reads them: the device reads
the bundle, which carries the scores it needs (`Scores`, `CorpusScores`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.bundle import SCORE_NAMES, CorpusInfo, SplitRecord

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True, kw_only=True)
class ClassScores:
    """One set of clips scored: train.evaluate.classification_metrics."""

    n: int
    accuracy: float  # = weighted accuracy (WA) in SER papers
    weighted_accuracy: float
    unweighted_accuracy: float  # UA: mean per-class recall
    macro_f1: float
    roc_auc_ovr: float | None  # None with fewer than two classes present
    per_class: dict[str, dict[str, float]]  # label -> precision, recall, f1, support
    confusion_matrix: list[list[int]]  # rows: true label
    labels: list[str]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ClassScores":
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scores_or_none(data: dict[str, Any] | None) -> ClassScores | None:
    return ClassScores.from_dict(data) if data else None


@dataclass(frozen=True, kw_only=True)
class EstimateRun:
    """One speaker-fold run's test score, as the estimate averages it."""

    run: str
    test_speakers: list[str]
    n: int
    accuracy: float
    unweighted_accuracy: float
    macro_f1: float


@dataclass(frozen=True, kw_only=True)
class CorpusEstimate:
    """One corpus's mean test scores over the runs that tested it, in its own labels."""

    labels: list[str]
    runs: int
    n: int
    accuracy: float
    unweighted_accuracy: float
    macro_f1: float
    unweighted_accuracy_shared: float | None  # on the six labels every corpus shares


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """A final fit's held-out estimate: the mean and spread of speaker-fold runs of the same recipe."""

    accuracy: float
    unweighted_accuracy: float
    macro_f1: float
    std: dict[str, float]  # over the runs, per score name
    n: int
    source: str  # which runs, how many held-out speakers
    runs: list[EstimateRun]
    per_corpus: dict[str, CorpusEstimate]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Estimate":
        return cls(**{**data, "runs": [EstimateRun(**run) for run in data["runs"]],
                      "per_corpus": {c: CorpusEstimate(**e) for c, e in data.get("per_corpus", {}).items()}})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def scores(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SCORE_NAMES}


@dataclass(frozen=True, kw_only=True)
class FitSummary:
    """The size of the model and what its training took."""

    n_params: int
    float32_bytes: int
    best_epoch: int
    epochs_run: int
    train_seconds: float
    total_seconds: float
    device: str


@dataclass(frozen=True, kw_only=True)
class RunMetrics(FitSummary):
    """metrics.json: the split, the fit, the scores on the test speakers (overall, per corpus in its own
    labels and on the six shared), the corpora, and for a final fit its seen-speaker score and estimate."""

    split: SplitRecord
    labels: list[str]
    test: ClassScores | None  # None for a final fit: no test speakers
    per_corpus: dict[str, ClassScores | None]
    shared_labels: dict[str, ClassScores | None]
    label_spaces: dict[str, list[str]]  # the labels each corpus defines
    corpora: dict[str, CorpusInfo]
    skipped_files: list[list[str]]  # [path, why]
    val: ClassScores | None = None  # with --validate
    seen: ClassScores | None = None  # a final fit's own training speakers: NOT an estimate
    estimate: Estimate | None = None  # a final fit's, when --estimate-from was given

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunMetrics":
        return cls(**{**data, "split": SplitRecord.from_dict(data["split"]), "test": _scores_or_none(data["test"]),
                      "per_corpus": {c: _scores_or_none(s) for c, s in data["per_corpus"].items()},
                      "shared_labels": {c: _scores_or_none(s) for c, s in data["shared_labels"].items()},
                      "corpora": {c: CorpusInfo.from_dict(i) for c, i in data["corpora"].items()},
                      "val": _scores_or_none(data.get("val")), "seen": _scores_or_none(data.get("seen")),
                      "estimate": Estimate.from_dict(data["estimate"]) if data.get("estimate") else None})

    @property
    def final_fit(self) -> bool:
        return self.split.kind == "none"

    def to_dict(self) -> dict[str, Any]:
        """The JSON as written since the first runs: `val` only with validation speakers, `seen` and
        `estimate` (null without one) only for a final fit."""
        fields = asdict(self)
        written = {"split": self.split.to_dict(), "labels": fields.pop("labels"),
                   **{k: v for k, v in fields.items() if k != "split"}}
        for key in ("val", "seen"):
            if written[key] is None:
                del written[key]
        if not self.final_fit:
            del written["estimate"]
        return written


def read_metrics(run_dir: Path) -> RunMetrics:
    """A run's metrics.json (OSError, ValueError, KeyError or TypeError when it is not one)."""
    return RunMetrics.from_dict(json.loads((run_dir / "metrics.json").read_text()))


@dataclass
class FitResult:
    """What fitting returns (train.fit, train.multiworker): the network and its training history."""

    model: "keras.Model"
    history: dict[str, list[float]]
    best_epoch: int
    seconds: float
    device: str
