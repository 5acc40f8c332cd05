"""`edge-ser train`: corpora -> split -> fit -> evaluate -> one run folder with model and reports."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.bundle import BUNDLE_FORMAT, SCORE_NAMES, Bundle, CorpusInfo
from edge.corpora import CANONICAL_LABELS, SHARED_LABELS
from edge.errors import EXIT_USAGE
from edge.features import FeatureParams
from edge.windowing import CLIP_HOP_SECONDS, clip_features
from train.config import SPLITS
from train.datasets import CORPUS_LICENCES, Dataset, DatasetError, default_cache_dir, load_corpora, model_licence, save_npz_whole
from train.records import ClassScores, FitSummary, RunMetrics
from train.splits import Split, no_split, random_split, speaker_split


@dataclass(frozen=True, kw_only=True)
class TrainRequest:
    data: tuple[Path, ...]
    corpus: str = "auto"
    split: str = "speaker"  # "speaker", "random" or "none" (final fit on everything)
    test_speakers: tuple[str, ...] = ()
    val_speakers: tuple[str, ...] = ()
    folds: int = 0
    fold: int = 0
    validate: bool = False  # True: validation speakers pick the best epoch (early stopping)
    limit_per_corpus: int = 0  # 0 = all files; else an even slice (keeps every speaker)
    runs_dir: Path = Path("runs")
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
    if request.split != "speaker":
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


def check_request(request: TrainRequest, config) -> None:
    """Option combinations that cannot work, refused before any data is read."""
    config.check_features(request.params.n_mfcc)
    if request.split == "none" and request.validate:
        raise DatasetError("--validate needs held-out speakers; a final fit (--split none) trains for a fixed --epochs")
    if request.estimate_from and request.split != "none":
        raise DatasetError("--estimate-from is for a final fit (--split none); other splits have their own test set")


def recipe(request: TrainRequest, config, labels: list[str]) -> dict:
    """Labels, features, model and training settings as the bundle records them (train.estimate compares these)."""
    return json.loads(json.dumps({"labels": labels, "feature_params": request.params.to_dict(),
                                  "model_config": config.model.to_dict(), "train_config": config.to_dict()}))


def one_blas_thread() -> None:
    """numpy's BLAS threads spin while they wait: beside the loader threads and TensorFlow's they made feature
    extraction many times slower on a busy 2-core machine, and the matrices here are small (docs/models.md
    "Training budget")."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def run_training(request: TrainRequest, config=None, parent=None) -> Path | None:
    """The whole `train` verb; returns the run folder (None on a worker that is not the chief). `parent`
    (train.parent.Parent): the network it starts from. Imports TensorFlow."""
    from train.config import TrainConfig
    from train.distill import teacher_soft_labels
    from train.estimate import check_estimate_runs, held_out_estimate
    from train.evaluate import classification_metrics, predict_clips
    from train.fit import TrainingSet, cluster_config, fit, is_chief, weights_digest
    from train.report import write_reports

    one_blas_thread()
    config = config or TrainConfig()
    check_request(request, config)
    cluster_config()  # a malformed TF_CONFIG fails now, not after the data has loaded
    started = time.monotonic()
    dataset = load_datasets(request)
    labels = ordered_labels(dataset)
    if len(labels) < 2:
        raise DatasetError(f"need at least two emotions to train, found only {labels}")
    estimate_runs = check_estimate_runs(request.estimate_from, recipe(request, config, labels), dataset.corpora)
    split = make_split(dataset, request, config.seed)
    print(f"{len(dataset.utterances)} utterances, {len(labels)} labels ({', '.join(labels)}); {split.description}",
          file=sys.stderr)
    spaces = label_spaces(dataset, labels)
    targets, masks, corpora = clip_arrays(dataset, labels, spaces)
    val_clips = eval_clips(dataset, split.val, request.params, request.cache_dir)
    test_clips = eval_clips(dataset, split.test, request.params, request.cache_dir)
    train = list(split.train)
    soft_labels = teacher_soft_labels(dataset, request.data, train, targets, masks, config)  # None unless distilling
    result = fit(TrainingSet([dataset.audio[i] for i in train], targets[train], masks[train], corpora[train], soft_labels),
                 val_clips, targets[list(split.val)], labels, request.params, config, parent)
    print(f"trained on {result.device}: weights sha256 {weights_digest(result.model)}", file=sys.stderr)
    if not is_chief():
        print("not the chief worker: the chief evaluates and writes the run", file=sys.stderr)
        return None
    predict = lambda x: result.model(x, training=False).numpy()  # noqa: E731
    test_probabilities = masked_probabilities(predict_clips(predict, test_clips), masks[list(split.test)])
    test_targets = targets[list(split.test)]

    def scores(indices, clips) -> ClassScores:
        return classification_metrics(targets[list(indices)], predict_clips(predict, clips), labels)

    final_fit = split.kind == "none"
    metrics = RunMetrics(
        split=split.record(), labels=labels, **asdict(fit_summary(result, started)),
        test=classification_metrics(test_targets, test_probabilities, labels) if split.test else None,
        per_corpus=per_corpus_metrics(dataset, split, test_targets, test_probabilities, labels, spaces),
        shared_labels=per_corpus_metrics(dataset, split, test_targets, test_probabilities, labels),
        label_spaces=spaces, corpora=corpus_summary(dataset), skipped_files=[[str(p), why] for p, why in dataset.skipped],
        val=scores(split.val, val_clips) if val_clips else None,
        seen=scores(split.train, eval_clips(dataset, split.train, request.params, request.cache_dir)) if final_fit else None,
        estimate=held_out_estimate(estimate_runs) if final_fit and estimate_runs else None)
    bundle = model_bundle(request, config, labels, split, metrics, parent.record() if parent else None)
    return finish_run(request, dataset, lambda folder: (
        result.model.save(folder / "model.keras"),
        write_reports(folder, metrics, result.history, bundle),
    ))


def fit_summary(result, started: float) -> FitSummary:
    """The size of the model and what its training took, for metrics.json."""
    return FitSummary(n_params=int(result.model.count_params()), float32_bytes=int(result.model.count_params() * 4),
                      best_epoch=result.best_epoch, epochs_run=len(result.history["loss"]),
                      train_seconds=round(result.seconds, 1), total_seconds=round(time.monotonic() - started, 1),
                      device=result.device)


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


def corpus_summary(dataset: Dataset) -> dict[str, CorpusInfo]:
    summary = {}
    for name in dataset.corpora:
        members = [u for u in dataset.utterances if u.corpus == name]
        summary[name] = CorpusInfo(files=len(members), speakers=len({u.speaker for u in members}),
                                   licence=CORPUS_LICENCES.get(name, "unknown"))
    return summary


def model_bundle(request: TrainRequest, config, labels: list[str], split: Split, metrics: RunMetrics,
                 parent: dict | None = None) -> Bundle:
    """Everything needed to use the model later (docs/design.md contract 2); the converter embeds it."""
    import tensorflow as tf

    return Bundle.from_dict({
        "format": BUNDLE_FORMAT,
        "labels": labels,
        "feature_params": request.params.to_dict(),
        "normalisation": request.params.normalisation,
        "window_seconds": request.params.window_seconds,
        "clip_hop_seconds": CLIP_HOP_SECONDS,
        "model_config": config.model.to_dict(),
        "train_config": config.to_dict(),
        "corpora": {name: asdict(info) for name, info in metrics.corpora.items()},
        "licence": model_licence(sorted(metrics.corpora)),
        "label_sources": {label: [name for name, space in metrics.label_spaces.items() if label in space]
                          for label in labels},
        "split": split.to_dict(),
        "training_data": {**training_data(request, config.seed), **({"init_from": parent} if parent else {})},
        "training_device": metrics.device,
        **bundle_metrics(metrics),
        "n_params": metrics.n_params,
        "versions": {"edge_ser": _version(), "tensorflow": tf.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, "the new run's bundle")


def bundle_metrics(metrics: RunMetrics) -> dict:
    """The scores a model carries, and where they come from: its own test set, or for a final fit
    the held-out estimate (none when no estimate was given: better nothing than a seen-speaker score)."""
    if metrics.test:
        per_corpus = {corpus: {"labels": scores.labels, "n": scores.n, **{k: getattr(scores, k) for k in SCORE_NAMES}}
                      for corpus, scores in metrics.per_corpus.items() if scores}
        return {"metrics": {k: getattr(metrics.test, k) for k in SCORE_NAMES},
                "metrics_source": f"this model's test set: {metrics.split.description}",
                "metrics_per_corpus": per_corpus}
    if metrics.estimate:
        return {"metrics": metrics.estimate.scores(), "metrics_source": metrics.estimate.source,
                "metrics_per_corpus": {c: asdict(e) for c, e in metrics.estimate.per_corpus.items()}}
    return {}


RECORDED_REQUEST_FIELDS = ("corpus", "split", "test_speakers", "val_speakers", "folds", "fold", "validate",
                           "limit_per_corpus")


def training_data(request: TrainRequest, seed: int) -> dict:
    """How to rebuild this run's data and split (the converter calibrates and evaluates with it)."""
    recorded = {name: getattr(request, name) for name in RECORDED_REQUEST_FIELDS}
    return {"data": [str(Path(p).resolve()) for p in request.data], **json.loads(json.dumps(recorded)), "seed": seed}


def request_from_bundle(bundle: Bundle, data: tuple[Path, ...] = ()) -> tuple[TrainRequest, int]:
    """The TrainRequest (and seed) that made a bundle; `data` overrides the recorded paths."""
    recorded = bundle.training_data
    fields = {name: tuple(value) if isinstance(value, list) else value
              for name, value in recorded.items() if name in RECORDED_REQUEST_FIELDS}
    request = TrainRequest(data=tuple(data) or tuple(Path(p) for p in recorded["data"]),
                           params=bundle.params, **fields)
    return request, recorded["seed"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edge-ser")
    except PackageNotFoundError:
        return "unknown"


def finish_run(request: TrainRequest, dataset: Dataset, write) -> Path:
    """Write the run into a hidden folder, then rename it into place and point runs/latest at it."""
    name = request.name or time.strftime("%Y%m%d-%H%M%S-") + "+".join(dataset.corpora)
    final = request.runs_dir / name
    partial = request.runs_dir / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        write(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    point_latest(request.runs_dir, name)
    return final


def point_latest(runs_dir: Path, name: str) -> None:
    latest = runs_dir / "latest"
    temporary = runs_dir / f".latest.{os.getpid()}.tmp"  # this process's own: runs may finish side by side
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(name)
    temporary.replace(latest)
