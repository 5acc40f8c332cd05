"""What `--labels` does to accuracy and calibration on held-out speakers: answering among a subset of
the labels (by default the six every training corpus has) against answering among all of them.

The device calibrates first, then keeps the named labels' shares, renormalised (edge.calibration.restricted).
Here the calibration is the one `calibrate` keeps for the default model (the gap map; `--method` picks
another of train.calibrate.FITTERS), cross-fitted by run (each run's held-out clips scored by a fit on
the other runs), and only clips whose true label is in the subset are
scored, both ways: so the two columns differ only in the labels the answer may take. Clips are what
`classify` reports (a clip's mean over its windows); windows what `listen` reports (the mean of the
last 3 windows within a clip). Writes runs/bench/label_subset.md.

    .venv/bin/python -m benchmarks.label_subset [--labels a,b,...] [--method M] [RUN ...]   # default: runs/default-fold*
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.fold_report import fold_runs_parser, run_names, write_report
from edge.calibration import label_indices, restricted
from edge.cli.app import str_list
from edge.corpora import SHARED_LABELS
from train.calibrate import FITTERS, HeldOut, Reliability, fold_fits, held_out_predictions, reliability, smoothed_windows


def cross_fitted(held: HeldOut, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated clip means and smoothed windows, each fold by a `method` fitted on the others; and
    each window's clip target and corpus."""
    clips = np.zeros((len(held.targets), len(held.labels)))
    windows, targets, corpora = [], [], []
    for scored, calibration in fold_fits(held, FITTERS[method], held.folds):
        clips[scored] = calibration.apply(held.clip_means[scored])
        rows, row_targets = smoothed_windows(held.subset(scored), calibration)
        windows.append(rows)
        targets.append(row_targets)
        corpora.append(np.repeat(held.corpora[scored], [len(held.windows[i]) for i in np.flatnonzero(scored)]))
    return clips, np.concatenate(windows), np.concatenate(targets), np.concatenate(corpora)


def subset_scores(probabilities: np.ndarray, targets: np.ndarray, keep: np.ndarray) -> tuple[Reliability, Reliability]:
    """`reliability` of clips whose target is among `keep`: answered among every label, and among `keep`."""
    inside = np.isin(targets, keep)
    every = reliability(probabilities[inside], targets[inside])
    subset_targets = np.searchsorted(keep, targets[inside])  # the target's position among the kept labels
    return every, reliability(restricted(probabilities[inside], keep), subset_targets)


def score_rows(what: str, probabilities: np.ndarray, targets: np.ndarray, corpora: np.ndarray,
               keep: np.ndarray) -> list[str]:
    """One row per corpus and pooled: the subset's clips, answered among all labels and among the subset."""
    lines = []
    for corpus in [*sorted(set(corpora.tolist())), "all"]:
        rows = np.full(len(targets), True) if corpus == "all" else corpora == corpus
        every, subset = subset_scores(probabilities[rows], targets[rows], keep)
        lines.append(f"| {what} | {corpus} | {subset.n} | {every.accuracy:.3f} | {subset.accuracy:.3f} | "
                     f"{every.ece:.3f} | {subset.ece:.3f} |")
    return lines


def report(runs: tuple[Path, ...], labels: tuple[str, ...], method: str) -> list[str]:
    held = held_out_predictions(runs)
    keep = label_indices(tuple(held.labels), labels)
    clips, windows, window_targets, window_corpora = cross_fitted(held, method)
    return [f"# Answering among {', '.join(labels)} ({run_names(runs)})", "",
            f"Held-out clips whose label is one of these; calibrated by the {method}, cross-fitted by run; "
            "ECE 10 equal-width bins of top-1 confidence.", "",
            "| reported | corpus | n | accuracy, every label | accuracy, --labels | ECE, every label | ECE, --labels |",
            "|---|---|---|---|---|---|---|",
            *score_rows("clips", clips, held.targets, held.corpora, keep),
            *score_rows("smoothed windows", windows, window_targets, window_corpora, keep)]


def main() -> None:
    parser = fold_runs_parser(__doc__)
    parser.add_argument("--labels", default=",".join(SHARED_LABELS), help="comma-separated labels (default: the six shared)")
    parser.add_argument("--method", default="gap map", choices=sorted(FITTERS), help="the calibration (default: gap map)")
    args = parser.parse_args()
    write_report("label_subset", report(tuple(args.runs), str_list(args.labels), args.method))


if __name__ == "__main__":
    main()
