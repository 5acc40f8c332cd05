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

import argparse
from pathlib import Path

import numpy as np

from train.calibrate import HeldOut, _scores, clip_probabilities, fit_confidence_map, held_out_predictions

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = tuple(sorted((PROJECT / "runs").glob("default-fold*")))  # the folds make default-model trains
GROUPINGS = (1, 2, 3, 4)  # 1 = one map for every clip (what calibrate fits); n = clips of 1 .. n-1 windows, then n or more


def cross_fitted_by_windows(held: HeldOut, window_groups: np.ndarray, folds: np.ndarray) -> dict:
    """Each fold scored by maps fitted without it, one map per window group."""
    probabilities = np.zeros((len(held.targets), len(held.labels)))
    for fold in np.unique(folds):
        for group in np.unique(window_groups):
            scored, fitted = (folds == fold) & (window_groups == group), (folds != fold) & (window_groups == group)
            if scored.any() and fitted.any():
                probabilities[scored] = clip_probabilities(held.subset(scored), fit_confidence_map(held.subset(fitted)))
    return _scores(probabilities, held)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, default=list(DEFAULT_RUNS))
    runs = tuple(parser.parse_args().runs)
    text = "\n".join([f"# Confidence maps by windows averaged ({', '.join(r.name for r in runs)})", "",
                      "ECE, 10 equal-width bins of top-1 confidence, held-out clips, every label the network has.", "",
                      *rows(runs)]) + "\n"
    out = PROJECT / "runs" / "bench" / "calibration_by_windows.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
