"""`edge-ser train`: corpora -> split -> fit -> evaluate -> one run folder with model and reports (the parts it
is made of, which other modules also read, are in train.recipe)."""
from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import Bundle, CorpusInfo, CorpusScores, Scores
from edge.discovery import Dataset, DatasetError
from edge.settings import CLIP_HOP_SECONDS
from train.config import TrainConfig
from train.datasets import CORPUS_LICENCES, model_licence
from train.recipe import (
    TrainRequest,
    clip_arrays,
    eval_clips,
    label_spaces,
    load_datasets,
    make_split,
    masked_probabilities,
    ordered_labels,
    per_corpus_metrics,
    recipe,
    training_data,
)
from train.records import ClassScores, FitResult, FitSummary, RunMetrics


def check_request(request: TrainRequest, config) -> None:
    """Option combinations that cannot work, refused before any data is read."""
    config.check_features(request.params.n_mfcc)
    if request.split == "none" and request.validate:
        raise DatasetError("--validate needs held-out speakers; a final fit (--split none) trains for a fixed --epochs")
    if request.estimate_from and request.split != "none":
        raise DatasetError("--estimate-from is for a final fit (--split none); other splits have their own test set")


def one_blas_thread() -> None:
    """numpy's BLAS threads spin while they wait: beside the loader threads and TensorFlow's they made feature
    extraction many times slower on a busy 2-core machine, and the matrices here are small (docs/models.md
    "Training budget")."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def run_training(request: TrainRequest, config=None, parent=None) -> Path | None:
    """The whole `train` verb; returns the run folder (None on a worker that is not the chief). `parent`
    (train.parent.Parent): the network it starts from. Imports TensorFlow."""
    from train.batches import TrainingSet
    from train.config import TrainConfig
    from train.devices import cluster_config, is_chief
    from train.distill import teacher_targets
    from train.estimate import check_estimate_runs, held_out_estimate
    from train.evaluate import classification_metrics, predict_clips
    from train.fit import fit, weights_digest

    one_blas_thread()
    config = config or TrainConfig()
    check_request(request, config)
    cluster_config()  # a malformed TF_CONFIG fails now, not after the data has loaded
    started = time.monotonic()
    dataset = load_datasets(request)
    config = config.for_corpora(len(dataset.corpora), len(dataset.utterances))
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
    teacher = teacher_targets(dataset, request.data, train, targets, masks, config)  # empty unless distilling
    result = fit(TrainingSet([dataset.audio[i] for i in train], targets[train], masks[train], corpora[train],
                             teacher.soft_labels, teacher.features),
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
    bundle = model_bundle(request, config, labels, metrics, parent.record() if parent else None)
    return finish_run(request, dataset, lambda folder: write_run(folder, result, metrics, bundle))


def write_run(folder: Path, result: FitResult, metrics: RunMetrics, bundle: Bundle) -> None:
    """The run folder's files: the Keras model, metrics.json, bundle.json and the reports."""
    from train.report import write_reports

    result.model.save(folder / "model.keras")
    write_reports(folder, metrics, result.history, bundle)


def fit_summary(result, started: float) -> FitSummary:
    """The size of the model and what its training took, for metrics.json."""
    return FitSummary(n_params=int(result.model.count_params()), float32_bytes=int(result.model.count_params() * 4),
                      best_epoch=result.best_epoch, epochs_run=len(result.history["loss"]),
                      train_seconds=round(result.seconds, 1), total_seconds=round(time.monotonic() - started, 1),
                      device=result.device)


def corpus_summary(dataset: Dataset) -> dict[str, CorpusInfo]:
    summary = {}
    for name in dataset.corpora:
        members = [u for u in dataset.utterances if u.corpus == name]
        summary[name] = CorpusInfo(files=len(members), speakers=len({u.speaker for u in members}),
                                   licence=CORPUS_LICENCES.get(name, "unknown"))
    return summary


def model_bundle(request: TrainRequest, config: TrainConfig, labels: list[str], metrics: RunMetrics,
                 parent: dict[str, Any] | None = None) -> Bundle:
    """Everything needed to use the model later (docs/design.md contract 2); the converter embeds it."""
    import tensorflow as tf

    scores, source, per_corpus = bundle_metrics(metrics)
    return Bundle(
        labels=tuple(labels), params=request.params, clip_hop_seconds=CLIP_HOP_SECONDS,
        model_config=config.model.to_dict(), train_config=config.to_dict(), corpora=dict(metrics.corpora),
        licence=model_licence(sorted(metrics.corpora)),
        label_sources={label: tuple(name for name, space in metrics.label_spaces.items() if label in space)
                       for label in labels},
        split=metrics.split, training_data={**training_data(request, config.seed), **({"init_from": parent} if parent else {})},
        training_device=metrics.device, metrics=scores, metrics_source=source, metrics_per_corpus=per_corpus,
        n_params=metrics.n_params,
        versions={"edge_ser": _version(), "tensorflow": tf.__version__, "numpy": np.__version__,
                  "python": platform.python_version()},
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def bundle_metrics(metrics: RunMetrics) -> tuple[Scores | None, str | None, dict[str, CorpusScores]]:
    """The scores a model carries, where they come from, and per corpus: its own test set, or for a final fit
    the held-out estimate (none when no estimate was given: better nothing than a seen-speaker score)."""
    if metrics.test:
        per_corpus = {corpus: CorpusScores(labels=tuple(scores.labels), n=scores.n, accuracy=scores.accuracy,
                                           unweighted_accuracy=scores.unweighted_accuracy, macro_f1=scores.macro_f1)
                      for corpus, scores in metrics.per_corpus.items() if scores}
        return (Scores(accuracy=metrics.test.accuracy, unweighted_accuracy=metrics.test.unweighted_accuracy,
                       macro_f1=metrics.test.macro_f1),
                f"this model's test set: {metrics.split.description}", per_corpus)
    if metrics.estimate:
        return (Scores.from_dict(metrics.estimate.scores()), metrics.estimate.source,
                {c: CorpusScores.from_dict(asdict(e)) for c, e in metrics.estimate.per_corpus.items()})
    return None, None, {}


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
