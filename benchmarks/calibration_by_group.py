"""Would one confidence map per group of clips calibrate better than one map for all?

Two groupings the device knows without knowing the corpus:
- the number of windows averaged: a clip's probabilities are the mean over its 2 s windows (`classify`),
  and averaging windows that disagree lowers the top probability, so clips of several windows could be
  under-confident where single windows are over-confident (clips of 1, 2, 3 ... windows, the last
  group taking every longer clip);
- the label predicted (top-label calibration, Gupta & Ramdas 2021): the network may be over-confident
  in some labels and under-confident in others.
Each group gets its own map when at least MIN_GROUP_CLIPS clips of the fit fall in it, the one map
otherwise; scored as `calibrate` scores one map (ECE, 10 bins, top-1): cross-fitted by run, and with
each corpus left out of the fit in turn. Writes runs/bench/calibration_by_group.md.

    .venv/bin/python -m benchmarks.calibration_by_group [RUN ...]   # default: runs/default-fold*
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.fold_report import ECE_NOTE, fold_runs_parser, run_names, write_report
from train.calibrate import (
    CalibrationScores,
    HeldOut,
    calibration_scores,
    clip_probabilities,
    fit_confidence_map,
    held_out_predictions,
)

WINDOW_GROUPINGS = (1, 2, 3, 4)  # 1 = one map for every clip (what calibrate fits); n = clips of 1 .. n-1 windows, then n or more
MIN_GROUP_CLIPS = 200  # a group's own map needs this many fitted clips: 10 map knots of 20 clips


def cross_fitted_by_group(held: HeldOut, groups: np.ndarray, folds: np.ndarray) -> CalibrationScores:
    """Each fold scored by maps fitted without it: one per group with MIN_GROUP_CLIPS fitted clips,
    the one map for the other groups."""
    probabilities = np.zeros((len(held.targets), len(held.labels)))
    for fold in np.unique(folds):
        scored, fitted = folds == fold, folds != fold
        probabilities[scored] = clip_probabilities(held.subset(scored), fit_confidence_map(held.subset(fitted)))
        for group in np.unique(groups[scored]):
            own = fitted & (groups == group)
            if own.sum() >= MIN_GROUP_CLIPS:
                in_group = scored & (groups == group)
                probabilities[in_group] = clip_probabilities(held.subset(in_group), fit_confidence_map(held.subset(own)))
    return calibration_scores(probabilities, held)


def groupings(held: HeldOut) -> list[tuple[str, np.ndarray]]:
    windows = np.array([len(w) for w in held.windows])
    named = []
    for groups in WINDOW_GROUPINGS:
        lengths = [str(n) for n in range(1, groups)] + [f"{groups}+"]
        named.append(("one map" if groups == 1 else f"one each for {', '.join(lengths)} windows",
                      np.minimum(windows, groups)))
    named.append(("one per label predicted", held.clip_means.argmax(axis=1)))
    return named


def rows(runs: tuple[Path, ...]) -> list[str]:
    held = held_out_predictions(runs)
    corpora = sorted(set(held.corpora.tolist()))
    lines = ["| maps | scored | all | " + " | ".join(corpora) + " |", "|---|---|---|" + "---|" * len(corpora)]
    for name, groups in groupings(held):
        for scored, folds in (("cross-fitted by run", held.folds), ("corpus left out", held.corpora)):
            scores = cross_fitted_by_group(held, groups, folds)
            lines.append(f"| {name} | {scored} | {scores.overall.ece:.3f} | "
                         + " | ".join(f"{scores.per_corpus[c].ece:.3f}" for c in corpora) + " |")
    return lines


def main() -> None:
    runs = tuple(fold_runs_parser(__doc__).parse_args().runs)
    write_report("calibration_by_group", [f"# Confidence maps by group of clips ({run_names(runs)})", "",
                                          ECE_NOTE, "", *rows(runs)])


if __name__ == "__main__":
    main()
