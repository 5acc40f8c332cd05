"""`edge-ser crosscorpus`: how trained runs do on every corpus's held-out speakers, clean and
re-recorded through simulated rooms (train.rooms), scored on the six labels all corpora share.

Every run is scored on the same test speakers: the last fifth of each corpus's speakers, the ones a
default speaker-independent `edge-ser train` holds out. So a run trained on a corpus never heard
these speakers, and a run trained without it never heard the corpus: the matrix says which.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.bundle_json import read_bundle_json
from edge.corpora import SHARED_LABELS
from edge.discovery import Dataset, DatasetError
from edge.features import FeatureParams
from train.datasets import load_corpora
from train.rooms import ROOM_COUNT, RoomCondition, rerecord_all, room_impulse_responses
from train.splits import speaker_split

SAMPLE_RATE = FeatureParams().sample_rate  # the corpora are read, and the rooms simulated, at the features' rate


@dataclass(frozen=True)
class CorpusTest:
    corpus: str
    indices: tuple[int, ...]
    speakers: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CrossCorpusRequest:
    runs: tuple[Path, ...]
    data: tuple[Path, ...]
    out_dir: Path
    rooms: bool = True
    cache_dir: Path | None = None
    room_count: int = ROOM_COUNT


def corpus_tests(dataset: Dataset) -> list[CorpusTest]:
    """Each corpus's default held-out speakers (the last fifth, as `train` holds them out)."""
    split = speaker_split(dataset.utterances, validate=False)
    tests = []
    for corpus in dataset.corpora:
        indices = tuple(i for i in split.test if dataset.utterances[i].corpus == corpus)
        speakers = tuple(s for s in split.test_speakers if s.startswith(f"{corpus}:"))
        tests.append(CorpusTest(corpus, indices, speakers))
    return tests


def heard_speakers(bundle: Bundle, test: CorpusTest) -> bool:
    """Whether the run trained on any of the test speakers (a final fit, a random split, or other folds)."""
    if test.corpus not in bundle.corpora:
        return False
    split = bundle.split
    return split is None or split.kind != "speaker" or not set(test.speakers) <= set(split.test_speakers)


def load_run_model(run_dir: Path):
    import keras

    bundle = read_bundle_json(run_dir / "bundle.json")
    return keras.saving.load_model(run_dir / "model.keras", compile=False), bundle


def score(model, labels: list[str], clips: list[np.ndarray], targets: list[str]) -> dict | None:
    return score_predictions(lambda x: model(x, training=False).numpy(), labels, clips, targets)


def score_predictions(predict_batch, labels: list[str], clips: list[np.ndarray], targets: list[str]) -> dict | None:
    """Scores over the six shared labels of the clips' mean window probabilities, and as a device reports them;
    `predict_batch` maps windows (n, frames, features) to the network's probabilities (a Keras model, a TFLite one)."""
    from train.evaluate import predict_clips, restricted_metrics

    probabilities = predict_clips(predict_batch, clips)
    known = [i for i, t in enumerate(targets) if t in labels]
    y, probabilities = np.array([labels.index(targets[i]) for i in known]), probabilities[known]
    scores = restricted_metrics(y, probabilities, labels, SHARED_LABELS)
    if scores is None:
        return None
    return {**scores.to_dict(), "device_unweighted_accuracy": device_ua(y, probabilities, labels)}


def device_ua(y: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> float:
    """UA over the shared labels' clips with the prediction a device reports: the most probable of all the
    network's labels, so a clip called by a label outside the six (calm, surprise) counts wrong."""
    from sklearn.metrics import recall_score

    shared = [labels.index(label) for label in SHARED_LABELS if label in labels]
    present = [column for column in shared if np.any(y == column)]
    return float(recall_score(y, probabilities.argmax(axis=1), labels=present, average="macro"))


class TestWindows:
    """Every test corpus's clip windows, clean and through the simulated rooms, made once per feature
    definition (runs trained with other feature params are scored with their own)."""

    def __init__(self, dataset: Dataset, tests: list[CorpusTest], request: CrossCorpusRequest) -> None:
        self.dataset, self.tests, self.cache_dir = dataset, tests, request.cache_dir
        self.rerecorded: dict[str, list[np.ndarray]] = {}
        if request.rooms:
            condition = RoomCondition()
            responses = room_impulse_responses(condition, SAMPLE_RATE, request.room_count)
            self.rerecorded = {t.corpus: rerecord_all([dataset.audio[i] for i in t.indices], SAMPLE_RATE, responses, condition)
                               for t in tests}
        self._made: dict[FeatureParams, tuple[dict, dict]] = {}

    def of(self, params: FeatureParams) -> tuple[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]]]:
        """(clean, rooms): per corpus, each clip's windows as model input."""
        from edge.windowing import clip_features
        from train.recipe import eval_clips

        if params.sample_rate != SAMPLE_RATE:
            raise DatasetError(f"cross-corpus scores need {SAMPLE_RATE} Hz features, "
                               f"got {params.sample_rate} Hz")
        if params not in self._made:
            clean = {t.corpus: eval_clips(self.dataset, t.indices, params, self.cache_dir) for t in self.tests}
            rooms = {corpus: [clip_features(a, params) for a in audio] for corpus, audio in self.rerecorded.items()}
            self._made[params] = (clean, rooms)
        return self._made[params]


def cross_corpus(request: CrossCorpusRequest) -> dict:
    """Score every run on every corpus's held-out speakers; write JSON, Markdown and a heatmap."""
    dataset = load_corpora(request.data, "auto", 0, SAMPLE_RATE, request.cache_dir)
    tests = corpus_tests(dataset)
    windows = TestWindows(dataset, tests, request)
    rows = []
    for run_dir in request.runs:
        model, bundle = load_run_model(Path(run_dir))
        clean, rooms = windows.of(bundle.params)
        row: dict[str, Any] = {"run": str(run_dir), "trained_on": sorted(bundle.corpora), "cells": {}}
        for t in tests:
            targets = [dataset.utterances[i].label for i in t.indices]
            cell = {"clean": score(model, list(bundle.labels), clean[t.corpus], targets),
                    "seen_corpus": t.corpus in bundle.corpora, "seen_speakers": heard_speakers(bundle, t)}
            if request.rooms:
                cell["room"] = score(model, list(bundle.labels), rooms[t.corpus], targets)
            row["cells"][t.corpus] = cell
        rows.append(row)
    report = {"labels": list(SHARED_LABELS), "metric": "unweighted accuracy over the six shared labels",
              "tests": {t.corpus: {"clips": len(t.indices), "speakers": list(t.speakers)} for t in tests},
              "room_condition": RoomCondition().describe() if request.rooms else None, "rows": rows}
    write_cross_corpus(request.out_dir, report)
    return report


def ua(cell: dict | None, key: str, metric: str = "unweighted_accuracy") -> float | None:
    return cell[key].get(metric) if cell and cell.get(key) else None


def markdown(report: dict) -> str:
    corpora = list(report["tests"])
    rooms = report["room_condition"] is not None
    lines = ["# Cross-corpus matrix", "",
             f"{report['metric']} ({', '.join(report['labels'])}); chance 0.167. Each corpus is tested on its "
             "last fifth of speakers; *italic* = the run never heard that corpus at all; (heard) = the run "
             "trained on these very speakers, so that cell is not a held-out score.", ""]
    lines += table(report, corpora, rooms, "unweighted_accuracy")
    lines += ["", "## As a device reports it", "",
              "The same clips, the prediction the most probable of all the network's labels (as `classify` "
              "reports it): a clip called by a label outside the six counts wrong.", ""]
    lines += table(report, corpora, rooms, "device_unweighted_accuracy")
    lines += ["", "Test speakers: " + "; ".join(f"{c}: {len(t['speakers'])} speakers, {t['clips']} clips "
                                                  f"({', '.join(s.split(':')[1] for s in t['speakers'])})"
                                                  for c, t in report["tests"].items())]
    if rooms:
        lines += ["", f"Room condition: {report['room_condition']} (train/rooms.py)."]
    return "\n".join(lines) + "\n"


def table(report: dict, corpora: list[str], rooms: bool, metric: str) -> list[str]:
    head = [f"{c} clean" for c in corpora] + ([f"{c} room" for c in corpora] if rooms else [])
    lines = ["| run | trained on | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head)]
    for row in report["rows"]:
        cells = []
        for key in ("clean", "room") if rooms else ("clean",):
            for c in corpora:
                value, cell = ua(row["cells"][c], key, metric), row["cells"][c]
                text = "-" if value is None else f"{value:.3f}"
                if cell["seen_speakers"] and value is not None:
                    text += " (heard)"
                cells.append(text if cell["seen_corpus"] or value is None else f"*{text}*")
        lines.append(f"| {Path(row['run']).name} | {' + '.join(row['trained_on'])} | " + " | ".join(cells) + " |")
    return lines


def write_cross_corpus(out_dir: Path, report: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "crosscorpus.json").write_text(json.dumps(report, indent=2))
    (out_dir / "crosscorpus.md").write_text(markdown(report))
    heatmap(out_dir / "crosscorpus.png", report)


def heatmap(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = list(report["tests"])
    keys = ("clean", "room") if report["room_condition"] else ("clean",)
    columns = [(k, c) for k in keys for c in corpora]
    values = np.array([[np.nan if row["cells"][c]["seen_speakers"] else ua(row["cells"][c], k) or np.nan
                        for k, c in columns] for row in report["rows"]])
    figure, axes = plt.subplots(figsize=(1.3 * len(columns) + 3, 0.5 * len(values) + 1.5))
    image = axes.imshow(values, vmin=1 / 6, vmax=0.8, cmap="viridis")
    axes.set_xticks(range(len(columns)), [f"{c}\n{k}" for k, c in columns])
    axes.set_yticks(range(len(values)), [Path(r["run"]).name for r in report["rows"]])
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.5 else "black")
    figure.colorbar(image, label="UA, six shared labels")
    axes.set_title("Held-out speakers of each corpus (chance 0.167)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
