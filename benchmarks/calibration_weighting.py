"""Should a calibration fit weigh every held-out clip the same, or every corpus the same?

The held-out predictions `edge-ser calibrate` fits on (each speaker-fold run's model on its own test
speakers) are 60 % CREMA-D for the default model, because CREMA-D has the most clips. A device's
voices belong to none of our corpora, so the question is which fit serves a corpus it never saw.
Each fitter (temperature, confidence map), fitted both ways, is scored (ECE, 10 bins, top-1):
cross-fitted by run (the figures `calibrate` reports) and leaving each corpus out of the fit in
turn (that corpus then stands for one the device meets). Writes runs/bench/calibration_weighting.md.

    .venv/bin/python -m benchmarks.calibration_weighting [RUN ...]   # default: runs/default-fold*
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.fold_report import ECE_NOTE, fold_runs_parser, run_names, write_report
from train.calibrate import cross_fitted, fit_confidence_map, fit_temperature, held_out_predictions


def rows(runs: tuple[Path, ...]) -> list[str]:
    held = held_out_predictions(runs)
    corpora = sorted(set(held.corpora.tolist()))
    lines = ["| fit | clips weighed | scored | all | " + " | ".join(corpora) + " | mean of corpora |",
             "|---|---|---|---|" + "---|" * len(corpora) + "---|"]
    for name, fitter in (("temperature", fit_temperature), ("confidence map", fit_confidence_map)):
        for weigh_corpora in (False, True):
            fit = partial(fitter, weigh_corpora=weigh_corpora)
            for scored, groups in (("cross-fitted by run", None), ("corpus left out", held.corpora)):
                scores = cross_fitted(held, fit, groups)
                per_corpus = [scores.per_corpus[c].ece for c in corpora]
                lines.append(f"| {name} | {'corpus equally' if weigh_corpora else 'each clip 1'} | {scored} | "
                             f"{scores.overall.ece:.3f} | " + " | ".join(f"{e:.3f}" for e in per_corpus)
                             + f" | {np.mean(per_corpus):.3f} |")
    return lines


def main() -> None:
    runs = tuple(fold_runs_parser(__doc__).parse_args().runs)
    write_report("calibration_weighting", [f"# Calibration fits: clips or corpora weighed equally ({run_names(runs)})", "",
                                           ECE_NOTE, "", *rows(runs)])


if __name__ == "__main__":
    main()
