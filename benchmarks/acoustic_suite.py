"""The acoustic test suite (docs/acoustic-suite.md): each model on held-out speakers, clean and through every
condition of train.acoustic_suite (conditions no training run uses), unweighted accuracy over the six shared
labels per corpus and the share of the clean score each condition keeps.

    .venv/bin/python -m benchmarks.acoustic_suite runs/default-fold1 runs/wide-fold1 edge/models/default.tflite

A run folder is scored with its float Keras model (as `edge-ser crosscorpus` does), a .tflite file through the
edge runtime. Every model hears the same clips: the held-out speakers of --speakers-from (default: the first
run folder), a seeded sample of --clips-per-corpus per corpus. A model that trained on those speakers is
marked (heard): its clean score is not a held-out one, its ratios still say what the conditions cost it.
Writes runs/bench/acoustic_suite.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.fold_report import PROJECT, write_report
from edge.bundle import Bundle
from edge.bundle_json import read_bundle_json
from edge.corpora import SHARED_LABELS
from edge.discovery import Dataset
from edge.errors import EdgeSerError
from edge.plural import counted
from train.acoustic_suite import SAMPLE_RATE, SUITE_SEED, Condition, SuiteError, conditions_named, degrade
from train.crosscorpus import CorpusTest, heard_speakers, load_run_model, score_predictions
from train.datasets import default_cache_dir, load_corpora

DATA = tuple(PROJECT.parent / "shared" / "data" / name for name in ("crema-d", "ravdess", "tess"))
CLIPS_PER_CORPUS = 400  # a seeded sample per corpus: UA's standard error about 0.025; 0 = every held-out clip


@dataclass(frozen=True)
class SuiteModel:
    name: str
    kind: str  # "float (Keras)" or "TFLite (edge runtime)"
    bundle: Bundle
    predict_batch: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class SuiteRequest:
    models: tuple[Path, ...]
    data: tuple[Path, ...] = DATA
    speakers_from: Path | None = None
    speakers: tuple[str, ...] = ()  # or the test speakers named, e.g. ("cremad:1001", "ravdess:01")
    clips_per_corpus: int = CLIPS_PER_CORPUS
    conditions: tuple[str, ...] = ()  # names; () = all
    out_name: str = "acoustic_suite"


def load_model(path: Path) -> SuiteModel:
    """A run folder's float model, or a .tflite file through the edge runtime (its int8 or float weights)."""
    if path.is_dir():
        model, bundle = load_run_model(path)
        return SuiteModel(path.name, "float (Keras)", bundle, lambda x: model(x, training=False).numpy())
    if path.suffix == ".tflite":
        from edge.runtime import EdgeModel

        edge_model = EdgeModel(path, threads=1)
        return SuiteModel(path.name, "TFLite (edge runtime)", edge_model.bundle, edge_model.predict_batch)
    raise SuiteError(f"{path}: neither a run folder nor a .tflite model")


def held_out_speakers(path: Path) -> tuple[str, ...]:
    """The test speakers of a speaker-independent run (the clips every model is scored on)."""
    bundle = read_bundle_json(path / "bundle.json") if path.is_dir() else None
    split = bundle.split if bundle else None
    if split is None or split.kind != "speaker" or not split.test_speakers:
        raise SuiteError(f"--speakers-from {path}: not a speaker-independent run folder (no held-out speakers)")
    return split.test_speakers


def corpus_tests(dataset: Dataset, speakers: tuple[str, ...], per_corpus: int) -> list[CorpusTest]:
    """Per corpus, the held-out speakers' clips of the six shared labels: all, or a seeded sample of `per_corpus`."""
    tests = []
    for corpus in dataset.corpora:
        own = [s for s in speakers if s.startswith(f"{corpus}:")]
        indices = [i for i, u in enumerate(dataset.utterances)
                   if u.corpus == corpus and u.speaker in own and u.label in SHARED_LABELS]
        if per_corpus and len(indices) > per_corpus:
            rng = np.random.default_rng([SUITE_SEED, len(indices)])
            indices = sorted(rng.choice(indices, size=per_corpus, replace=False).tolist())
        if indices:
            tests.append(CorpusTest(corpus, tuple(indices), tuple(own)))
    if not tests:
        raise SuiteError("no held-out clip of the shared labels in the data given (check --data and --speakers-from)")
    return tests


def condition_clips(dataset: Dataset, test: CorpusTest, condition: Condition | None) -> list[np.ndarray]:
    """Every test clip, clean (`condition` None) or as `condition` makes it sound."""
    clips = [dataset.audio[i] for i in test.indices]
    if condition is None:
        return clips
    return [degrade(condition, clip, dataset.utterances[i].path.name) for clip, i in zip(clips, test.indices)]


def score_condition(dataset: Dataset, tests: list[CorpusTest], condition: Condition | None,
                    models: list[SuiteModel]) -> list[dict[str, float | None]]:
    """Each model's UA over the shared labels per corpus under `condition` (None = clean). The condition is
    played once per clip; models with the same features share their windows."""
    from edge.windowing import clip_features

    scores: list[dict[str, float | None]] = [{} for _ in models]
    for test in tests:
        targets = [dataset.utterances[i].label for i in test.indices]
        clips = condition_clips(dataset, test, condition)
        windows: dict = {}
        for model, row in zip(models, scores):
            params = model.bundle.params
            if params not in windows:
                windows[params] = [clip_features(clip, params) for clip in clips]
            result = score_predictions(model.predict_batch, list(model.bundle.labels), windows[params], targets)
            row[test.corpus] = result["unweighted_accuracy"] if result else None
    return scores


def run_suite(request: SuiteRequest) -> dict:
    """Score every model clean and under every condition; the report as a dict (see `markdown`)."""
    conditions = conditions_named(request.conditions)
    speakers_from = request.speakers_from or next((m for m in request.models if m.is_dir()), None)
    if speakers_from is None and not request.speakers:
        raise SuiteError("name a run folder among the models, in --speakers-from, or --speakers: the speakers tested")
    speakers = request.speakers or held_out_speakers(speakers_from)  # type: ignore[arg-type]
    models = [load_model(path) for path in request.models]  # before the data: a mistake costs seconds
    dataset = load_corpora(request.data, "auto", 0, SAMPLE_RATE, default_cache_dir())
    tests = corpus_tests(dataset, speakers, request.clips_per_corpus)
    started = time.perf_counter()
    clean = score_condition(dataset, tests, None, models)
    per_condition = {}
    for condition in conditions:
        per_condition[condition.name] = score_condition(dataset, tests, condition, models)
        print(f"{condition.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rows = [{"model": model.name, "path": str(path), "kind": model.kind,
             "heard": {t.corpus: heard_speakers(model.bundle, t) for t in tests}, "clean": clean[n],
             "conditions": {name: {"ua": scores[n], "ratio": ratios(scores[n], clean[n])}
                            for name, scores in per_condition.items()}}
            for n, (model, path) in enumerate(zip(models, request.models))]
    return {"metric": "unweighted accuracy over the six shared labels (chance 0.167)", "seed": SUITE_SEED,
            "speakers_from": "named" if request.speakers else f"held out by {speakers_from}",
            "clips_per_corpus": request.clips_per_corpus,
            "tests": {t.corpus: {"clips": len(t.indices), "speakers": list(t.speakers)} for t in tests},
            "conditions": [{"name": c.name, "description": c.describe(), "trained_family": c.trained_family}
                           for c in conditions], "rows": rows}


def ratios(scores: dict[str, float | None], clean: dict[str, float | None]) -> dict[str, float | None]:
    """Per corpus and for the mean over corpora: the share of the clean UA the condition keeps."""
    both = [c for c in clean if scores.get(c) is not None and clean[c]]
    kept: dict[str, float | None] = {c: None for c in clean}  # None: no clean score to keep a share of
    kept.update({c: scores[c] / clean[c] for c in both})  # type: ignore[operator]
    kept["mean"] = (float(np.mean([scores[c] for c in both])) / float(np.mean([clean[c] for c in both]))) if both else None
    return kept


def mean_ua(scores: dict[str, float | None]) -> float | None:
    values = [v for v in scores.values() if v is not None]
    return float(np.mean(values)) if values else None


def summary(row: dict, conditions: list[dict]) -> tuple[float | None, float | None, str]:
    """The mean and the lowest ratio (of the corpora's mean UA) over the conditions of families no training
    run uses, and the condition with the lowest."""
    unseen = [c["name"] for c in conditions if not c["trained_family"]]
    kept = {name: row["conditions"][name]["ratio"]["mean"] for name in unseen if row["conditions"][name]["ratio"]["mean"]}
    if not kept:
        return None, None, "-"
    worst = min(kept, key=lambda name: kept[name])
    return float(np.mean(list(kept.values()))), kept[worst], worst


def cell(ua: float | None, ratio: float | None = None) -> str:
    if ua is None:
        return "-"
    return f"{ua:.3f}" if ratio is None else f"{ua:.3f} ({100 * ratio:.0f} %)"


def model_table(row: dict, corpora: list[str], conditions: list[dict]) -> list[str]:
    heard = [c for c in corpora if row["heard"][c]]
    title = f"### {row['model']} ({row['kind']})" + (f": HEARD {', '.join(heard)} speakers in training" if heard else "")
    lines = [title, "", "| condition | " + " | ".join(corpora) + " | mean |", "|---|" + "---|" * (len(corpora) + 1)]
    lines.append("| clean | " + " | ".join(cell(row["clean"].get(c)) for c in corpora) + f" | {cell(mean_ua(row['clean']))} |")
    for condition in conditions:
        result = row["conditions"][condition["name"]]
        mark = "" if condition["trained_family"] else " \u2020"
        lines.append(f"| {condition['name']}{mark} | " + " | ".join(cell(result["ua"].get(c), result["ratio"].get(c))
                                                                  for c in corpora)
                     + f" | {cell(mean_ua(result['ua']), result['ratio']['mean'])} |")
    mean, lowest, worst = summary(row, conditions)
    if mean is not None:
        lines += ["", f"Conditions of families no training run uses (\u2020): the mean over corpora keeps "
                      f"{100 * mean:.0f} % of the clean UA on average, {100 * lowest:.0f} % at the lowest ({worst})."]
    return lines


def markdown(report: dict, command: str) -> list[str]:
    corpora = list(report["tests"])
    lines = ["# Acoustic test suite", "", f"`{command}`", "",
             f"{report['metric']}; in brackets the share of the clean UA the condition keeps. Test speakers "
             f"({report['speakers_from']}): " + "; ".join(f"{c} {counted(t['clips'], 'clip')} of "
                                                         f"{counted(len(t['speakers']), 'speaker')}"
                                                         for c, t in report["tests"].items())
             + f" (seeded sample of at most {report['clips_per_corpus'] or 'all'} per corpus). "
             "\u2020 = a family no training run uses; the others share a family with training's, by another generator.", ""]
    for row in report["rows"]:
        lines += model_table(row, corpora, report["conditions"]) + [""]
    lines += ["## Conditions", ""]
    lines += [f"- **{c['name']}**: {c['description']}." + (f" Shares with training: {c['trained_family']}."
                                                         if c["trained_family"] else "") for c in report["conditions"]]
    return lines


def parse(argv: list[str] | None) -> SuiteRequest:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="run folders and/or .tflite files")
    parser.add_argument("--data", nargs="+", type=Path, default=list(DATA), help="corpus folders (default: ../shared/data)")
    parser.add_argument("--speakers-from", type=Path, help="the run whose held-out speakers are tested (default: the first run)")
    parser.add_argument("--speakers", default="", help="or the speakers tested, comma-separated (e.g. cremad:1001,ravdess:01)")
    parser.add_argument("--clips-per-corpus", type=int, default=CLIPS_PER_CORPUS, help="seeded sample per corpus; 0 = all")
    parser.add_argument("--conditions", default="", help="comma-separated condition names (default: all)")
    parser.add_argument("--out-name", default="acoustic_suite", help="report name under runs/bench/")
    args = parser.parse_args(argv)
    return SuiteRequest(models=tuple(args.models), data=tuple(args.data), speakers_from=args.speakers_from,
                        speakers=tuple(name.strip() for name in args.speakers.split(",") if name.strip()),
                        clips_per_corpus=args.clips_per_corpus, out_name=args.out_name,
                        conditions=tuple(name.strip() for name in args.conditions.split(",") if name.strip()))


def main(argv: list[str] | None = None) -> int:
    request = parse(argv)
    try:
        report = run_suite(request)
    except EdgeSerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    command = "python -m benchmarks.acoustic_suite " + " ".join(sys.argv[1:] if argv is None else argv)
    out = write_report(request.out_name, markdown(report, command))
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
