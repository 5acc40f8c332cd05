"""What `edge-ser adapt` buys, speaker by speaker (docs/adaptation.md).

For every speaker: k clips per label (k in --k) drawn at random adapt the model, and the speaker's other
clips score it: UA over the speaker's labels, every model answering among those labels. Side by side,
on the same draws: the base model; the adapted one (edge/adaptation.py, at each --strength); and two
models that start from nothing but what the adapted layer reads of the base network ("from scratch": the network's
own last layer discarded): a new logistic layer, and the nearest class mean. A label needs k + 1
clips (k adapt, at least one scores); with fewer, it adapts on all but one. Runs the edge code path:
the clips are read and windowed as `edge-ser adapt` reads them (no voice-activity detector).

    # the speakers a run held out (the model is "at home": their corpora trained it)
    .venv/bin/python -m benchmarks.adapt --model runs/default-fold1/model-dynamic.tflite --speakers test DATA...
    # every speaker of a corpus the model never heard
    .venv/bin/python -m benchmarks.adapt --model runs/cc-no-cremad/model-dynamic.tflite --speakers all ../shared/data/crema-d
"""
from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.adapt import ClipOutputs, clip_outputs, exposed_network, open_for_adapting, read_base, signal_outputs
from edge.adaptation import (
    choose_strength,
    clip_means,
    fit_head,
    minimise,
    softmax,
    start_head,
    unweighted_accuracy,
)
from edge.audio import AudioReadError, read_audio
from edge.discovery import Utterance, discover
from edge.errors import EdgeSerError
from edge.runtime import EdgeModel

KS = (1, 2, 4, 8)
STRENGTHS = (16.0, 64.0, 256.0)  # fixed strengths beside `auto` (cross-validated, what adapt does by default)
SCRATCH_STRENGTH = 1.0
DRAWS = 3  # random draws of the adaptation clips per speaker and k
MAX_CLIPS_PER_LABEL = 30  # per speaker, a seeded sample: TESS has 200 a label, CREMA-D about 13, RAVDESS 8


@dataclass(frozen=True)
class Draw:
    adapt: list[ClipOutputs]
    score: list[ClipOutputs]
    labels: tuple[str, ...]  # the speaker's labels, in the model's order


def speakers(data: list[Path], which: str, test_speakers: tuple[str, ...], per_label: int,
             model_labels: tuple[str, ...]) -> dict[str, list[Utterance]]:
    """Each speaker's clips of the model's labels (at most `per_label` of each label, a seeded sample)."""
    found: dict[str, list[Utterance]] = {}
    for root in data:
        for u in discover(root).utterances:
            if u.speaker and u.label in model_labels and (which == "all" or u.speaker in test_speakers):
                found.setdefault(u.speaker, []).append(u)
    rng = np.random.default_rng(0)
    for speaker, clips in found.items():
        by_label = {label: [u for u in clips if u.label == label] for label in sorted({u.label for u in clips})}
        found[speaker] = [members[i] for members in by_label.values()
                          for i in sorted(rng.permutation(len(members))[:per_label])]
    return found


def heard(model: EdgeModel, u: Utterance, condition: Any, one_room: bool = False) -> ClipOutputs | str:
    """A clip through the network, clean (`condition` None) or through an acoustic suite condition
    (train.acoustic_suite): each clip in its own draw of the condition, or with `one_room` every clip of a
    speaker in the same draw (one room, microphone and noise at one level: a device where it is deployed)."""
    if condition is None:
        return clip_outputs(model, u, None)
    from train.acoustic_suite import degrade

    try:
        audio = read_audio(u.path, model.bundle.params.sample_rate)
    except AudioReadError as error:
        return str(error)
    draw = f"{u.corpus}:{u.speaker}" if one_room else u.path.name
    return signal_outputs(model, u.label, degrade(condition, audio, draw))


def network_outputs(model_path: Path, clips: list[Utterance], cache_dir: Path, condition: str,
                    one_room: bool = False) -> dict[Path, ClipOutputs]:
    """Every clip through the network (probabilities and summary per window), cached by model, clips and
    condition."""
    names = "\n".join([condition + " one room" * one_room, *(str(u.path) for u in clips)])
    exposed = exposed_network(*read_base(model_path))  # what the layer reads is part of the key
    key = hashlib.sha256(exposed + names.encode()).hexdigest()[:16]
    cache = cache_dir / f"adapt-bench-{key}.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return {u.path: ClipOutputs(u.label, stored[f"p{i}"], stored[f"h{i}"]) for i, u in enumerate(clips)
                    if f"p{i}" in stored}
    outputs: dict[Path, ClipOutputs] = {}
    heard_in = None
    if condition:
        from train.acoustic_suite import conditions_named

        heard_in = conditions_named((condition,))[0]
    with tempfile.TemporaryDirectory() as scratch:
        model = open_for_adapting(exposed, Path(scratch))
        for u in clips:
            result = heard(model, u, heard_in, one_room)
            if not isinstance(result, str):
                outputs[u.path] = result
    cache_dir.mkdir(parents=True, exist_ok=True)
    arrays = {f"{kind}{i}": getattr(outputs[u.path], name) for i, u in enumerate(clips) if u.path in outputs
              for kind, name in (("p", "probabilities"), ("h", "summary"))}
    np.savez(cache, **arrays)
    return outputs


def draw(clips: list[ClipOutputs], k: int, rng: np.random.Generator, model_labels: tuple[str, ...]) -> Draw | None:
    by_label: dict[str, list[ClipOutputs]] = {}
    for c in clips:
        by_label.setdefault(c.label, []).append(c)
    adapt, score = [], []
    for members in by_label.values():
        if len(members) < 2:
            continue
        order = rng.permutation(len(members))
        taken = min(k, len(members) - 1)
        adapt += [members[i] for i in order[:taken]]
        score += [members[i] for i in order[taken:]]
    labels = tuple(label for label in model_labels if any(c.label == label for c in adapt))
    return Draw(adapt, score, labels) if len(labels) >= 2 else None


def windows(clips: list[ClipOutputs], labels: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    probabilities = np.concatenate([c.probabilities for c in clips])
    summary = np.concatenate([c.summary for c in clips])
    targets = np.concatenate([np.full(len(c.probabilities), labels.index(c.label)) for c in clips])
    numbers = np.concatenate([np.full(len(c.probabilities), i) for i, c in enumerate(clips)])
    return probabilities, summary, targets, numbers


def scores(d: Draw, model_labels: tuple[str, ...], strengths: tuple[float, ...]) -> dict[str, float]:
    """UA on the draw's scoring clips of every method, each fitted on its adaptation clips."""
    columns = tuple(model_labels.index(label) for label in d.labels)
    probabilities, summary, targets, numbers = windows(d.adapt, d.labels)
    test_p, test_h, _, test_clips = windows(d.score, d.labels)
    truth = np.array([d.labels.index(c.label) for c in d.score])
    answers = {"base": test_p[:, list(columns)]}
    chosen = choose_strength(columns, summary, probabilities, targets, numbers)
    for name, strength in [(f"adapted {s:g}", s) for s in strengths] + [("adapted auto", chosen)]:
        head = fit_head(columns, summary, probabilities, targets, numbers, strength)
        answers[name] = head.apply(test_h, test_p)[:, list(columns)]
    answers["new layer"] = new_layer(columns, summary, probabilities, targets, numbers, test_h)
    answers["class means"] = class_means(summary, targets, numbers, test_h, len(columns))
    return {"chosen strength": chosen,
            **{name: unweighted_accuracy(truth, clip_means(p, test_clips)[1].argmax(axis=1)) for name, p in answers.items()}}


def new_layer(columns: tuple[int, ...], summary: np.ndarray, probabilities: np.ndarray, targets: np.ndarray,
              numbers: np.ndarray, test_summary: np.ndarray) -> np.ndarray:
    """A logistic layer on the summary alone, from zero (the base's own last layer not used)."""
    head = start_head(columns, summary)
    x = (summary - head.pooled_mean) / head.pooled_scale
    inputs = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    _, inverse, counts = np.unique(numbers, return_inverse=True, return_counts=True)
    onehot = np.eye(len(columns))[targets]
    w = minimise(inputs, np.zeros_like(onehot), onehot, 1.0 / counts[inverse], SCRATCH_STRENGTH)
    test = np.concatenate([(test_summary - head.pooled_mean) / head.pooled_scale, np.ones((len(test_summary), 1))], axis=1)
    return softmax(test @ w)


def class_means(summary: np.ndarray, targets: np.ndarray, numbers: np.ndarray, test_summary: np.ndarray,
                n_labels: int) -> np.ndarray:
    """Nearest class mean of the summaries (each clip's windows averaged first), as probabilities."""
    first, clip_vectors = clip_means(summary, numbers)
    clip_targets = targets[first]
    means = np.stack([clip_vectors[clip_targets == t].mean(axis=0) for t in range(n_labels)])
    distances = ((test_summary[:, None, :] - means[None]) ** 2).sum(axis=-1)
    return softmax(-distances / max(float(distances.mean()), 1e-9))


def measure(outputs: dict[str, list[ClipOutputs]], model_labels: tuple[str, ...], ks: tuple[int, ...],
            strengths: tuple[float, ...], draws: int) -> list[dict[str, object]]:
    """One row per speaker, k and draw."""
    rows: list[dict[str, object]] = []
    for speaker, clips in sorted(outputs.items()):
        for k in ks:
            rng = np.random.default_rng([k, int(hashlib.sha256(speaker.encode()).hexdigest()[:8], 16)])
            for number in range(draws):
                d = draw(clips, k, rng, model_labels)
                if d is not None and d.score:
                    rows.append({"speaker": speaker, "k": k, "draw": number, "adapt_clips": len(d.adapt),
                                 "score_clips": len(d.score), **scores(d, model_labels, strengths)})
    return rows


def speaker_means(rows: list[dict[str, object]], k: int, corpus: str, methods: list[str]) -> dict[str, np.ndarray]:
    """Each method's UA per speaker at k (draws averaged), for one corpus or all."""
    chosen = [r for r in rows if r["k"] == k and (corpus == "all" or str(r["speaker"]).startswith(f"{corpus}:"))]
    names = sorted({str(r["speaker"]) for r in chosen})
    return {m: np.array([np.mean([float(r[m]) for r in chosen if r["speaker"] == s]) for s in names])  # type: ignore[arg-type]
            for m in methods}


def summary(rows: list[dict[str, object]], methods: list[str], reference: str) -> list[str]:
    """Markdown: mean UA per method; the reference adapted model's gain over the base with its 95 %
    interval over speakers, its worst speaker, and the share of speakers it leaves > 0.02 below the base."""
    corpora = sorted({str(r["speaker"]).split(":")[0] for r in rows})
    lines = ["| corpus | k | speakers | " + " | ".join(methods) + f" | gain of {reference} (95 % CI) | worst | "
             "speakers < base - 0.02 |", "|" + "---|" * (len(methods) + 6)]
    for corpus in corpora + (["all"] if len(corpora) > 1 else []):
        for k in sorted({int(r["k"]) for r in rows}):  # type: ignore[call-overload]
            means = speaker_means(rows, k, corpus, methods)
            gain = means[reference] - means["base"]
            if not gain.size:
                continue
            half = 1.96 * gain.std(ddof=1) / np.sqrt(gain.size) if gain.size > 1 else float("nan")
            lines.append(f"| {corpus} | {k} | {gain.size} | " + " | ".join(f"{means[m].mean():.3f}" for m in methods)
                         + f" | {gain.mean():+.3f} ± {half:.3f} | {gain.min():+.3f} | {np.mean(gain < -0.02):.0%} |")
    return lines


def latency(base: Path, adapted: Path, repeats: int) -> list[str]:
    """Median ms per window of `predict` (network, and the adapted layer when there is one), the two models
    called in turn on the same random windows so that a busy machine slows both alike."""
    models = [EdgeModel(base), EdgeModel(adapted)]
    params = models[0].bundle.params
    windows = np.random.default_rng(0).normal(size=(16, params.frames_per_window, params.n_features)).astype(np.float32)
    times: list[list[float]] = [[], []]
    for i in range(repeats):
        for model, spent in zip(models, times):
            started = time.perf_counter()
            model.predict(windows[i % len(windows)])
            spent.append(time.perf_counter() - started)
    base_ms, adapted_ms = (1e3 * float(np.median(t)) for t in times)
    return [f"| model | inference ms per window (median of {repeats}) | vs base |", "|---|---|---|",
            f"| {base.name} | {base_ms:.3f} | 1.00x |", f"| {adapted.name} | {adapted_ms:.3f} | {adapted_ms / base_ms:.2f}x |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="*", type=Path, help="Corpus folders (or CSV manifests with speakers).")
    parser.add_argument("--model", type=Path, required=True, help="The base .tflite.")
    parser.add_argument("--speakers", default="test", help="test: the speakers the model's bundle says it held out; "
                        "all: every speaker in DATA; or a comma-separated list (cremad:1001,ravdess:01,...).")
    parser.add_argument("--k", default=",".join(map(str, KS)), help="Clips per label to adapt with.")
    parser.add_argument("--strength", default=",".join(f"{s:g}" for s in STRENGTHS), help="Adapted layers' strengths.")
    parser.add_argument("--draws", type=int, default=DRAWS)
    parser.add_argument("--condition", default="", help="Every clip (adapting and scored) heard through this "
                        "condition of train.acoustic_suite, e.g. laptop-office, or several (comma-separated; 'suite': "
                        "every one), each measured apart and then summed up; default: clean.")
    parser.add_argument("--one-room", action="store_true", help="With --condition: every clip of a speaker in the "
                        "same draw of the condition (one room, microphone and noise level), not each clip in its own.")
    parser.add_argument("--max-clips-per-label", type=int, default=MAX_CLIPS_PER_LABEL)
    parser.add_argument("--max-speakers", type=int, default=0, help="An even slice of at most this many speakers.")
    parser.add_argument("--json", type=Path, help="Write every row here.")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-ser")
    parser.add_argument("--latency", type=Path, metavar="ADAPTED", help="Instead: time --model against this adapted "
                        "model, window by window in turn.")
    args = parser.parse_args()
    if args.latency:
        print("\n".join(latency(args.model, args.latency, 3000)))
        return
    if not args.data:
        parser.error("name the corpus folders (or CSV manifests) whose speakers adapt and score")
    try:
        heard_in = conditions(args.condition)
    except EdgeSerError as error:  # an unknown condition
        parser.error(str(error))
    _, bundle = read_base(args.model)
    test_speakers = bundle.split.test_speakers if bundle.split else ()
    if args.speakers not in ("test", "all"):
        test_speakers, args.speakers = tuple(args.speakers.split(",")), "listed"
    if args.speakers == "test" and not test_speakers:
        parser.error(f"{args.model}'s bundle records no test speakers: use --speakers all with a corpus it never heard")
    found = speakers(args.data, args.speakers, test_speakers, args.max_clips_per_label, bundle.labels)
    names = sorted(found)
    if args.max_speakers and len(names) > args.max_speakers:
        names = [names[int(i * len(names) / args.max_speakers)] for i in range(args.max_speakers)]
    clips = [u for name in names for u in found[name]]
    strengths = tuple(float(s) for s in args.strength.split(","))
    methods = ["base", *[f"adapted {s:g}" for s in strengths], "adapted auto", "new layer", "class means"]
    all_rows: dict[str, list[dict[str, object]]] = {}
    for condition in heard_in:
        outputs = network_outputs(args.model, clips, args.cache, condition, args.one_room)
        by_speaker = {name: [outputs[u.path] for u in found[name] if u.path in outputs] for name in names}
        rows = measure(by_speaker, bundle.labels, tuple(int(k) for k in args.k.split(",")), strengths, args.draws)
        all_rows[condition or "clean"] = rows
        print(f"{args.model}: {len(names)} speakers ({args.speakers}), {len(clips)} clips, {args.draws} draws per k, "
              f"{condition or 'clean'}{' (one room per speaker)' * (args.one_room and bool(condition))}; mean UA over "
              "speakers on their other clips")
        print("\n".join(summary(rows, methods, "adapted auto")) + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(all_rows if len(all_rows) > 1 else rows, indent=1))
    if len(all_rows) > 1:
        print("\n".join(across_conditions(all_rows, "adapted auto")))


def conditions(option: str) -> list[str]:
    """--condition's conditions ('' = clean), checked against the acoustic suite's names; 'suite' = all of them."""
    if not option:
        return [""]
    from train.acoustic_suite import conditions_named

    return [condition.name for condition in conditions_named(() if option == "suite" else tuple(option.split(",")))]


def across_conditions(all_rows: dict[str, list[dict[str, object]]], reference: str) -> list[str]:
    """Markdown: per condition and k, the base's mean UA over speakers and the reference's gain; then the
    gain's mean over the conditions (each condition weighs the same)."""
    ks = sorted({int(r["k"]) for rows in all_rows.values() for r in rows})  # type: ignore[call-overload]
    lines = ["| condition | base UA | " + " | ".join(f"gain k = {k}" for k in ks) + " |",
             "|" + "---|" * (len(ks) + 2)]
    gains: dict[int, list[float]] = {k: [] for k in ks}
    for condition, rows in all_rows.items():
        cells = []
        for k in ks:
            means = speaker_means(rows, k, "all", ["base", reference])
            gains[k].append(float((means[reference] - means["base"]).mean()))
            cells.append(f"{gains[k][-1]:+.3f}")
        base = speaker_means(rows, 4 if 4 in ks else ks[0], "all", ["base"])["base"].mean()
        lines.append(f"| {condition} | {base:.3f} | " + " | ".join(cells) + " |")
    lines.append("| **mean of conditions** | | " + " | ".join(f"**{np.mean(gains[k]):+.3f}**" for k in ks) + " |")
    return lines


if __name__ == "__main__":
    main()
