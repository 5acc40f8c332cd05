"""Is `listen`'s reported confidence, calibrated after smoothing, still calibrated on unseen speakers?

The windowed evaluation of benchmarks/window_trim.py: each speaker-fold run's float model on its
held-out speakers' files, read untrimmed and cut as `listen` cuts them (2 s windows every 0.5 s,
each cut to its loud span). Each window's reported probabilities are the mean of it and the
`--smoothing` windows before it in the same file, then the calibration of the final model
(`--calibration-from`, a run whose bundle.json carries it; fitted on the folds' trimmed clips, not on
these windows). ECE (10 bins, top-1) before and after, per corpus. Writes runs/bench/smoothing_calibration.md.

    .venv/bin/python -m benchmarks.smoothing_calibration [RUN ...] [--calibration-from runs/default-model]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.fold_report import PROJECT, fold_runs_parser, run_names, write_report
from benchmarks.window_trim import LISTEN_HOP_SECONDS, held_out_files
from edge.audio import read_audio
from edge.bundle_json import read_bundle_json
from edge.corpora import parse_any
from edge.settings import DEFAULT_SMOOTHING
from edge.windowing import clip_features


def smoothed_windows(run: Path, smoothing: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(smoothed window probabilities, targets, corpus per window) of one run's held-out files."""
    import keras

    model = keras.models.load_model(run / "model.keras", compile=False)
    bundle = read_bundle_json(run / "bundle.json")
    params, labels = bundle.params, list(bundle.labels)
    rows, targets, corpora = [], [], []
    for path, label in held_out_files(run):
        if label not in labels:
            continue
        windows = clip_features(read_audio(path, params.sample_rate), params, LISTEN_HOP_SECONDS, trim_windows=True)
        probabilities = model(windows, training=False).numpy()
        rows += [probabilities[max(0, i - smoothing + 1): i + 1].mean(axis=0) for i in range(len(probabilities))]
        targets += [labels.index(label)] * len(probabilities)
        corpora += [parse_any(path)[0]] * len(probabilities)
    return np.array(rows), np.array(targets), corpora


def main() -> None:
    from train.calibrate import reliability

    parser = fold_runs_parser(__doc__)
    parser.add_argument("--calibration-from", type=Path, default=PROJECT / "runs" / "default-model")
    parser.add_argument("--smoothing", type=int, default=DEFAULT_SMOOTHING)
    args = parser.parse_args()
    calibration = read_bundle_json(args.calibration_from / "bundle.json").calibration
    parts = [smoothed_windows(run, args.smoothing) for run in args.runs]
    raw = np.concatenate([p[0] for p in parts])
    targets = np.concatenate([p[1] for p in parts])
    corpora = np.array([c for p in parts for c in p[2]])
    calibrated = calibration.apply(raw)
    lines = [f"# listen's smoothed windows on unseen speakers: calibrated after smoothing ({args.smoothing} windows)", "",
             f"Runs: {run_names(args.runs)}; calibration from {args.calibration_from}/bundle.json.", "",
             "| windows of | n | accuracy | ECE before | ECE after | mean confidence after |", "|---|---|---|---|---|---|"]
    for name, keep in [("all", np.ones(len(targets), bool))] + [(c, corpora == c) for c in sorted(set(corpora))]:
        before, after = reliability(raw[keep], targets[keep]), reliability(calibrated[keep], targets[keep])
        lines.append(f"| {name} | {before.n} | {before.accuracy:.3f} | {before.ece:.3f} | **{after.ece:.3f}** | "
                     f"{after.mean_confidence:.3f} |")
    write_report("smoothing_calibration", lines)


if __name__ == "__main__":
    main()
