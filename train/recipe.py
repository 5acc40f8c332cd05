"""What a training run is made of, and what other modules read of it: the request (data, split, features),
the corpora loaded, the split, the clips' labels and masks, the evaluation windows and per-corpus scores.
train.pipeline runs a training from these; the converter, calibration, the teacher and the benchmarks rebuild a
run's data and split with them."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.corpora import AUTO_CORPUS, CANONICAL_LABELS, SHARED_LABELS
from edge.discovery import Dataset, DatasetError
from edge.errors import EXIT_USAGE
from edge.features import FeatureParams
from edge.settings import CLIP_HOP_SECONDS
from edge.windowing import clip_features
from train.config import DEFAULT_SPLIT, RUNS_DIR, SPLITS
from train.datasets import default_cache_dir, load_corpora, save_npz_whole
from train.records import ClassScores
from train.splits import Split, no_split, random_split, speaker_split


@dataclass(frozen=True, kw_only=True)
class TrainRequest:
    data: tuple[Path, ...]
    corpus: str = AUTO_CORPUS
    split: str = DEFAULT_SPLIT  # one of SPLITS: held-out speakers, random clips or none (a final fit on everything)
    test_speakers: tuple[str, ...] = ()
    val_speakers: tuple[str, ...] = ()
    folds: int = 0
    fold: int = 0
    validate: bool = False  # True: validation speakers pick the best epoch (early stopping)
    limit_per_corpus: int = 0  # 0 = all files; else an even slice (keeps every speaker)
    runs_dir: Path = RUNS_DIR
    name: str | None = None
    params: FeatureParams = field(default_factory=FeatureParams)
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    estimate_from: tuple[Path, ...] = ()  # held-out runs of the same recipe that estimate a final fit


def load_datasets(request: TrainRequest) -> Dataset:
    return load_corpora(request.data, request.corpus, request.limit_per_corpus, request.params.sample_rate,
                        request.cache_dir)


def make_split(dataset: Dataset, request: TrainRequest, seed: int) -> Split:
    if request.split == "random":
        return random_split(dataset.utterances, seed=seed, validate=request.validate)
    if request.split == "none":
        return no_split(dataset.utterances)
    if request.split != DEFAULT_SPLIT:
        raise DatasetError(f"unknown split {request.split!r}; use one of {', '.join(SPLITS)}", EXIT_USAGE)
    return speaker_split(dataset.utterances, list(request.test_speakers), list(request.val_speakers),
                         request.folds, request.fold, request.validate)


def ordered_labels(dataset: Dataset) -> list[str]:
    present = set(dataset.labels)
    return [label for label in CANONICAL_LABELS if label in present]


def eval_clips(dataset: Dataset, indices: tuple[int, ...], params: FeatureParams,
               cache_dir: Path | None) -> list[np.ndarray]:
    """Every window of every clip in `indices`, cached on disk by content."""
    digest = hashlib.sha256(json.dumps([params.to_dict(), CLIP_HOP_SECONDS]).encode())
    for i in indices:
        digest.update(str(dataset.utterances[i].path).encode())
        digest.update(np.ascontiguousarray(dataset.audio[i][:: 997]).tobytes())
    cache_file = cache_dir / f"windows-{digest.hexdigest()[:20]}.npz" if cache_dir else None
    if cache_file and cache_file.exists():
        with np.load(cache_file) as cached:
            return np.split(cached["windows"], np.cumsum(cached["counts"])[:-1]) if len(indices) else []
    clips = [clip_features(dataset.audio[i], params) for i in indices]
    if cache_file and clips:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        save_npz_whole(cache_file, windows=np.concatenate(clips), counts=np.array([len(c) for c in clips]))
    return clips


def recipe(request: TrainRequest, config, labels: list[str]) -> dict:
    """Labels, features, model and training settings as the bundle records them (train.estimate compares these)."""
    return json.loads(json.dumps({"labels": labels, "feature_params": request.params.to_dict(),
                                  "model_config": config.model.to_dict(), "train_config": config.to_dict()}))


def masked_probabilities(probabilities: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Each clip scored in its own corpus's labels: the others' probabilities set to 0."""
    return probabilities * masks if len(probabilities) else probabilities


def clip_arrays(dataset: Dataset, labels: list[str], spaces: dict[str, list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each clip's label (index into `labels`), its corpus's label mask (1 where the corpus defines the label,
    for the masked loss) and its corpus."""
    targets = np.array([labels.index(u.label) for u in dataset.utterances])
    masks = np.array([[label in spaces[u.corpus] for label in labels] for u in dataset.utterances], dtype=np.float32)
    return targets, masks, np.array([u.corpus for u in dataset.utterances])


def label_spaces(dataset: Dataset, labels: list[str]) -> dict[str, list[str]]:
    """The labels each corpus defines (those its files carry), in model order."""
    pairs = {(u.corpus, u.label) for u in dataset.utterances}
    return {name: [label for label in labels if (name, label) in pairs] for name in dataset.corpora}


def per_corpus_metrics(dataset: Dataset, split: Split, targets: np.ndarray, probabilities: np.ndarray,
                       labels: list[str], subsets: dict[str, list[str]] | None = None) -> dict[str, ClassScores | None]:
    """Each corpus's test speakers scored over its own labels in `subsets` (RAVDESS 8, CREMA-D 6), or
    over the six labels every corpus shares when `subsets` is None (the cross-corpus scale)."""
    from train.evaluate import restricted_metrics

    corpora = np.array([dataset.utterances[i].corpus for i in split.test])
    return {name: restricted_metrics(targets[corpora == name], probabilities[corpora == name], labels,
                                     subsets[name] if subsets else SHARED_LABELS)
            for name in sorted(set(corpora.tolist()))}


RECORDED_REQUEST_FIELDS = ("corpus", "split", "test_speakers", "val_speakers", "folds", "fold", "validate",
                           "limit_per_corpus")


def training_data(request: TrainRequest, seed: int) -> dict:
    """How to rebuild this run's data and split (the converter calibrates and evaluates with it)."""
    recorded = {name: getattr(request, name) for name in RECORDED_REQUEST_FIELDS}
    return {"data": [str(Path(p).resolve()) for p in request.data], **json.loads(json.dumps(recorded)), "seed": seed}


def request_from_bundle(bundle: Bundle, data: tuple[Path, ...] = ()) -> tuple[TrainRequest, int]:
    """The TrainRequest (and seed) that made a bundle; `data` overrides the recorded paths."""
    recorded = bundle.training_data
    fields: dict[str, Any] = {name: tuple(value) if isinstance(value, list) else value
              for name, value in recorded.items() if name in RECORDED_REQUEST_FIELDS}
    request = TrainRequest(data=tuple(data) or tuple(Path(p) for p in recorded["data"]),
                           params=bundle.params, **fields)
    return request, recorded["seed"]
