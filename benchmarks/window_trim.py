"""How `listen` scores on unseen speakers, with and without cutting each window to its loud span.

For every speaker-independent run given (default: the folds `make default-model` trains, runs/default-fold*), its held-out
speakers' files are read untrimmed, cut into 2 s windows every 0.5 s as `listen` does, and each window is
scored against the file's label by the run's float Keras model. For reference, the clip path `classify` and
the training report use (clip trimmed, windows averaged) is scored too. Writes runs/bench/window_trim.md.

    .venv/bin/python -m benchmarks.window_trim [RUN ...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge.audio import is_audio_file, read_audio
from edge.bundle_json import read_bundle_json
from edge.corpora import parse_any
from edge.windowing import clip_features, trim_silence

PROJECT = Path(__file__).resolve().parents[1]

LISTEN_HOP_SECONDS = 0.5  # `listen`'s default hop


def held_out_files(run: Path) -> list[tuple[Path, str]]:
    bundle = read_bundle_json(run / "bundle.json")
    speakers = set(bundle.split.test_speakers) if bundle.split else set()
    files = []
    for root in bundle.training_data["data"]:
        for path in sorted(p for p in Path(root).rglob("*") if is_audio_file(p)):
            parsed = parse_any(path)
            if parsed and parsed[1].speaker in speakers:
                files.append((path, parsed[1].label))
    return files


def score_run(run: Path) -> dict[str, list[bool]]:
    import keras

    model = keras.models.load_model(run / "model.keras")
    bundle = read_bundle_json(run / "bundle.json")
    params, labels = bundle.params, list(bundle.labels)
    hits: dict[str, list[bool]] = {"listen, raw windows": [], "listen, windows trimmed": [], "classify (clip path)": []}
    for path, label in held_out_files(run):
        signal, target = read_audio(path, params.sample_rate), labels.index(label)
        for name, trim in (("listen, raw windows", False), ("listen, windows trimmed", True)):
            windows = model.predict(clip_features(signal, params, LISTEN_HOP_SECONDS, trim_windows=trim), verbose=0)
            hits[name] += (windows.argmax(axis=1) == target).tolist()
        clip = model.predict(clip_features(trim_silence(signal), params), verbose=0).mean(axis=0)
        hits["classify (clip path)"].append(bool(clip.argmax() == target))
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path,
                        default=sorted((PROJECT / "runs").glob("default-fold*")))
    args = parser.parse_args()
    rows, pooled = [], {}
    for run in args.runs:
        hits = score_run(run)
        rows.append((run.name, {name: (float(np.mean(h)), len(h)) for name, h in hits.items()}))
        for name, h in hits.items():
            pooled.setdefault(name, []).extend(h)
        print(run.name, {name: round(float(np.mean(h)), 3) for name, h in hits.items()}, flush=True)
    names = list(pooled)
    lines = ["# listen on unseen speakers: window accuracy with and without window trimming", "",
             "Float Keras model of each run, its held-out speakers' files read untrimmed, 2 s windows every "
             f"{LISTEN_HOP_SECONDS} s; a window counts as right when its label is the file's.", "",
             "| run | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {run} | " + " | ".join(f"{acc:.3f} ({n})" for acc, n in scores.values()) + " |" for run, scores in rows]
    lines.append("| **all** | " + " | ".join(f"**{np.mean(pooled[n]):.3f}** ({len(pooled[n])})" for n in names) + " |")
    out = PROJECT / "runs" / "bench" / "window_trim.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
