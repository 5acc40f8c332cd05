"""The held-out estimate of a final fit: scores from speaker-independent runs of the same recipe.

A final fit (`--split none`) trains on every speaker, so it cannot score itself. Its honest
estimate is the mean test score of runs that used the same features, model and training settings
but held speakers out, e.g. the five `--folds 5` runs: together they test every speaker once.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge.bundle import SCORE_NAMES, Bundle, ModelBundleError
from edge.bundle_json import read_bundle_json
from edge.discovery import DatasetError
from edge.plural import counted
from train.config import ModelConfig
from train.records import CorpusEstimate, Estimate, EstimateRun, RunMetrics, read_metrics


def _read_run(run_dir: Path) -> tuple[RunMetrics, Bundle]:
    try:
        metrics = read_metrics(run_dir)
        bundle = read_bundle_json(run_dir / "bundle.json")
    except (OSError, ValueError, KeyError, TypeError, ModelBundleError) as error:
        raise DatasetError(f"--estimate-from {run_dir}: not a readable training run ({error})") from None
    return metrics, bundle


def _recipe(bundle: Bundle) -> dict:
    """What must be equal for a run to estimate another: everything but the seed and the data split."""
    return _comparable(json.loads(json.dumps({"labels": list(bundle.labels), "feature_params": bundle.params.to_dict(),
                                              "model_config": bundle.model_config, "train_config": bundle.train_config})))


def _model_recipe(model_config: dict) -> dict:
    """The network a run trained, with the settings it predates filled in as they were then (a run from before
    --front-end had the Conv1D, not today's default), and only the settings its front-end uses."""
    return ModelConfig.from_dict(model_config).network() if model_config else model_config


def _without_seed(recipe: dict) -> dict:
    return {**recipe, "train_config": {k: v for k, v in recipe["train_config"].items() if k != "seed"}}


def _comparable(recipe: dict) -> dict:
    """The recipe without the seed, each network (model_config, and train_config's copy) as _model_recipe."""
    train_config = recipe["train_config"]
    if train_config.get("model"):
        train_config = {**train_config, "model": _model_recipe(train_config["model"])}
    return _without_seed({**recipe, "model_config": _model_recipe(recipe.get("model_config", {})),
                          "train_config": train_config})


def _different(theirs: dict, ours: dict, prefix: str = "") -> list[str]:
    """The recipe fields that differ, by dotted path; a setting one run does not record (it was made before
    the setting existed) is not compared, at any depth."""
    different = []
    for key in sorted(set(theirs) & set(ours)):
        if isinstance(theirs[key], dict) and isinstance(ours[key], dict):
            different += _different(theirs[key], ours[key], f"{prefix}{key}.")
        elif theirs[key] != ours[key]:
            different.append(f"{prefix}{key}")
    return different


def check_estimate_runs(run_dirs: tuple[Path, ...], recipe: dict, corpora: list[str]) -> list[tuple[Path, RunMetrics]]:
    """Load and check every run before any training starts (a mistake should cost seconds, not minutes).
    `recipe` holds this run's bundle fields: labels, feature_params, model_config, train_config."""
    ours = _comparable(recipe)
    runs = []
    for run_dir in run_dirs:
        metrics, bundle = _read_run(Path(run_dir))
        if metrics.split.kind != "speaker" or not metrics.test:
            raise DatasetError(f"--estimate-from {run_dir}: its split is {metrics.split.kind!r}; only "
                               "speaker-independent runs give an honest estimate")
        theirs = _recipe(bundle)
        different = _different(theirs, ours)
        if different:
            raise DatasetError(f"--estimate-from {run_dir}: trained with a different {', '.join(different)}; "
                               "an estimate must come from the same recipe")
        if sorted(metrics.corpora) != sorted(corpora):
            raise DatasetError(f"--estimate-from {run_dir}: trained on {', '.join(sorted(metrics.corpora))}, "
                               f"not {', '.join(sorted(corpora))}")
        runs.append((Path(run_dir), metrics))
    return runs


def held_out_estimate(runs: list[tuple[Path, RunMetrics]]) -> Estimate:
    """Mean and spread of the runs' test scores, and which speakers they held out between them."""
    per_run = [EstimateRun(run=run_dir.name, test_speakers=list(m.split.test_speakers), n=m.test.n,
                           **{k: getattr(m.test, k) for k in SCORE_NAMES}) for run_dir, m in runs if m.test]
    speakers = sorted({s for run in per_run for s in run.test_speakers})
    return Estimate(**{k: float(np.mean([getattr(run, k) for run in per_run])) for k in SCORE_NAMES},
                    std={k: float(np.std([getattr(run, k) for run in per_run])) for k in SCORE_NAMES},
                    n=int(sum(run.n for run in per_run)),
                    source=f"mean of {counted(len(per_run), 'speaker-independent run')} of the same recipe "
                           f"({', '.join(run.run for run in per_run)}), testing {len(speakers)} held-out speakers",
                    runs=per_run, per_corpus=per_corpus_estimate([m for _, m in runs]))


def per_corpus_estimate(metrics: list[RunMetrics]) -> dict[str, CorpusEstimate]:
    """Each corpus's mean test scores over the runs that tested it: in its own labels, and on the six shared."""
    estimate = {}
    for corpus in sorted({c for m in metrics for c in m.per_corpus}):
        own = [s for m in metrics if (s := m.per_corpus.get(corpus))]
        shared = [s for m in metrics if (s := m.shared_labels.get(corpus))]
        if not own:
            continue
        estimate[corpus] = CorpusEstimate(
            labels=own[0].labels, runs=len(own), n=int(sum(o.n for o in own)),
            **{k: float(np.mean([getattr(o, k) for o in own])) for k in SCORE_NAMES},
            unweighted_accuracy_shared=float(np.mean([s.unweighted_accuracy for s in shared])) if shared else None)
    return estimate
