"""Would one confidence map per number of windows averaged calibrate better than one map? (issue 10)

A clip's probabilities are the mean over its 2 s windows (`classify`), and `listen` averages the last
windows too. Averaging windows that disagree lowers the top probability, so clips of several windows
could be under-confident where single windows are over-confident; the number averaged is known on
the device, unlike the corpus. This fits the confidence map separately for clips of 1, 2, 3 ...
windows (the last group takes every longer clip) and scores it as `calibrate` scores one map (ECE,
10 bins, top-1): cross-fitted by run, and with each corpus left out of the fit in turn. Writes
runs/bench/calibration_by_windows.md.

    .venv/bin/python -m benchmarks.calibration_by_windows [RUN ...]   # default: runs/default-fold*
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.fold_report import ECE_NOTE, fold_runs_parser, run_names, write_report
from train.calibrate import HeldOut, calibration_scores, clip_probabilities, fit_confidence_map, held_out_predictions

GROUPINGS = (1, 2, 3, 4)  # 1 = one map for every clip (what calibrate fits); n = clips of 1 .. n-1 windows, then n or more


def cross_fitted_by_windows(held: HeldOut, window_groups: np.ndarray, folds: np.ndarray) -> dict:
    """Each fold scored by maps fitted without it, one map per window group."""
    probabilities = np.zeros((len(held.targets), len(held.labels)))
    for fold in np.unique(folds):
        for group in np.unique(window_groups):
            scored, fitted = (folds == fold) & (window_groups == group), (folds != fold) & (window_groups == group)
            if scored.any() and fitted.any():
                probabilities[scored] = clip_probabilities(held.subset(scored), fit_confidence_map(held.subset(fitted)))
    return calibration_scores(probabilities, held)


def rows(runs: tuple[Path, ...]) -> list[str]:
    held = held_out_predictions(runs)
    corpora = sorted(set(held.corpora.tolist()))
    windows = np.array([len(w) for w in held.windows])
    lines = ["| maps | scored | all | " + " | ".join(corpora) + " |", "|---|---|---|" + "---|" * len(corpora)]
    for groups in GROUPINGS:
        lengths = [str(n) for n in range(1, groups)] + [f"{groups}+"]
        name = "one map" if groups == 1 else f"one each for {', '.join(lengths)} windows"
        for scored, folds in (("cross-fitted by run", held.folds), ("corpus left out", held.corpora)):
            scores = cross_fitted_by_windows(held, np.minimum(windows, groups), folds)
            lines.append(f"| {name} | {scored} | {scores['all']['ece']:.3f} | "
                         + " | ".join(f"{scores['per_corpus'][c]['ece']:.3f}" for c in corpora) + " |")
    return lines


def main() -> None:
    runs = tuple(fold_runs_parser(__doc__).parse_args().runs)
    write_report("calibration_by_windows", [f"# Confidence maps by windows averaged ({run_names(runs)})", "",
                                            ECE_NOTE, "", *rows(runs)])


if __name__ == "__main__":
    main()
