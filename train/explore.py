"""`edge-ser explore`: look at a corpus before training on it.

Writes into one folder: summary.json (files, speakers, label counts, durations and per-label
acoustic statistics per corpus), report.md, and PNG plots: class balance, one waveform and one
log-mel spectrogram per label (the exact features the model sees, from `edge.features`), the
distributions of duration / loudness / pitch / spectral centroid / zero-crossing rate per label,
and the mean MFCC per label. Statistics are on the trimmed audio that training uses.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import librosa
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from edge.discovery import DatasetError
from edge.features import FeatureParams, frame_features  # noqa: E402
from train.datasets import default_cache_dir, load_corpora  # noqa: E402

PITCH_RANGE_HZ = (65.0, 500.0)  # adult speech f0, male low to female/child high (yin search range)
N_MFCC_SHOWN = 13  # the classic MFCC count (Davis & Mermelstein 1980) for the per-label means


@dataclass(frozen=True)
class UtteranceStats:
    label: str
    corpus: str
    seconds: float
    rms_db: float  # RMS level, dBFS
    pitch_hz: float  # median yin f0 over frames with energy (NaN when none)
    centroid_hz: float  # mean spectral centroid
    zero_crossing_rate: float  # mean per-frame rate


def utterance_stats(signal: np.ndarray, rate: int, label: str, corpus: str) -> UtteranceStats:
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0
    frames_rms = librosa.feature.rms(y=signal, frame_length=400, hop_length=160)[0]
    f0 = librosa.yin(signal, fmin=PITCH_RANGE_HZ[0], fmax=PITCH_RANGE_HZ[1], sr=rate, frame_length=1024, hop_length=160)
    voiced = f0[: frames_rms.size][frames_rms[: f0.size] > 0.3 * frames_rms.max()] if frames_rms.size else f0
    centroid = librosa.feature.spectral_centroid(y=signal, sr=rate, n_fft=512, hop_length=160)[0]
    zcr = librosa.feature.zero_crossing_rate(signal, frame_length=400, hop_length=160)[0]
    return UtteranceStats(label, corpus, signal.size / rate, 20 * np.log10(rms) if rms > 0 else -100.0,
                          float(np.median(voiced)) if voiced.size else float("nan"),
                          float(centroid.mean()), float(zcr.mean()))


@dataclass(frozen=True)
class Durations:
    """Clip lengths of one corpus in seconds, after trimming silence."""

    total: float
    mean: float
    min: float
    max: float


@dataclass(frozen=True)
class LabelMeans:
    """One label's mean statistics over its clips' finite values (None when there are none, e.g. no voiced frame)."""

    seconds: float | None
    rms_db: float | None
    pitch_hz: float | None
    centroid_hz: float | None
    zero_crossing_rate: float | None


@dataclass(frozen=True)
class CorpusSummary:
    """One corpus in summary.json: files, speakers, clips per label, durations and per-label means."""

    files: int
    speakers: int
    labels: dict[str, int]
    seconds: Durations
    per_label: dict[str, LabelMeans]


def summarise(dataset, stats: list[UtteranceStats]) -> dict[str, CorpusSummary]:
    summary = {}
    for corpus in dataset.corpora:
        members = [(u, s) for u, s in zip(dataset.utterances, stats) if u.corpus == corpus]
        seconds = np.array([s.seconds for _, s in members])
        summary[corpus] = CorpusSummary(
            files=len(members),
            speakers=len({u.speaker for u, _ in members if u.speaker}),
            labels=dict(sorted(Counter(u.label for u, _ in members).items())),
            seconds=Durations(total=round(float(seconds.sum()), 1), mean=round(float(seconds.mean()), 2),
                              min=round(float(seconds.min()), 2), max=round(float(seconds.max()), 2)),
            per_label={label: _means([s for u, s in members if u.label == label])
                       for label in sorted({u.label for u, _ in members})},
        )
    return summary


def _means(stats: list[UtteranceStats]) -> LabelMeans:
    """Per-statistic means over the finite values (None when there are none, e.g. no voiced frame)."""
    means = {}
    for f in fields(LabelMeans):
        values = [v for s in stats if np.isfinite(v := getattr(s, f.name))]
        means[f.name] = round(float(np.mean(values)), 3) if values else None
    return LabelMeans(**means)


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _save(fig, path: Path, dpi: int = 90) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_class_balance(summary: dict[str, CorpusSummary], path: Path) -> None:
    labels = sorted({label for c in summary.values() for label in c.labels})
    fig, axis = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(summary)
    for i, (corpus, info) in enumerate(summary.items()):
        axis.bar(np.arange(len(labels)) + i * width, [info.labels.get(label, 0) for label in labels], width, label=corpus)
    axis.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=30)
    axis.set_ylabel("files")
    axis.legend()
    axis.set_title("Class balance")
    _save(fig, path)


def plot_examples(dataset, params: FeatureParams, folder: Path) -> None:
    """One utterance per label: its waveform, and its log-mel spectrogram as the model sees it."""
    labels = dataset.labels
    first = {label: next(i for i, u in enumerate(dataset.utterances) if u.label == label) for label in labels}
    waves, waves_axes = plt.subplots(len(labels), 1, figsize=(8, 1.4 * len(labels)), squeeze=False)
    specs, specs_axes = plt.subplots(len(labels), 1, figsize=(8, 1.6 * len(labels)), squeeze=False)
    for row, label in enumerate(labels):
        signal = dataset.audio[first[label]]
        name = dataset.utterances[first[label]].path.name
        time = np.arange(signal.size) / params.sample_rate
        waves_axes[row, 0].plot(time, signal, linewidth=0.5)
        waves_axes[row, 0].set_ylabel(label, rotation=0, ha="right")
        waves_axes[row, 0].set_title(name, fontsize=8, loc="right")
        features = frame_features(signal, params)
        specs_axes[row, 0].imshow(features.T, origin="lower", aspect="auto", cmap="magma",
                                  extent=(0, features.shape[0] * params.hop_length / params.sample_rate, 0, features.shape[1]))
        specs_axes[row, 0].set_ylabel(label, rotation=0, ha="right")
        specs_axes[row, 0].set_title(name, fontsize=8, loc="right")
    waves_axes[-1, 0].set_xlabel("seconds (trimmed)")
    specs_axes[-1, 0].set_xlabel("seconds (log-mel bands as the model sees them, before per-window normalisation)")
    _save(waves, folder / "waveforms.png")
    _save(specs, folder / "spectrograms.png")


def plot_distributions(stats: list[UtteranceStats], path: Path) -> None:
    labels = sorted({s.label for s in stats})
    keys = (("seconds", "duration (s)"), ("rms_db", "RMS (dBFS)"), ("pitch_hz", "median f0 (Hz)"),
            ("centroid_hz", "spectral centroid (Hz)"), ("zero_crossing_rate", "zero-crossing rate"))
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.2 * len(keys)))
    for axis, (key, title) in zip(axes, keys):
        groups = [[v for s in stats if s.label == label and np.isfinite(v := getattr(s, key))] for label in labels]
        axis.boxplot(groups, showfliers=False)
        axis.set_xticks(range(1, len(labels) + 1), labels)
        axis.set_ylabel(title)
    fig.suptitle("Feature distributions per label")
    _save(fig, path)


def plot_mfcc_by_label(dataset, rate: int, path: Path) -> None:
    labels = dataset.labels
    means = np.stack([np.mean([librosa.feature.mfcc(y=a, sr=rate, n_mfcc=N_MFCC_SHOWN, n_fft=512, hop_length=160).mean(axis=1)
                               for a, u in zip(dataset.audio, dataset.utterances) if u.label == label], axis=0)
                      for label in labels])
    fig, axis = plt.subplots(figsize=(8, 0.4 * len(labels) + 1.5))
    image = axis.imshow(means[:, 1:], aspect="auto", cmap="coolwarm")  # c0 is loudness: shown in the RMS plot
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xticks(range(N_MFCC_SHOWN - 1), [f"c{i}" for i in range(1, N_MFCC_SHOWN)])
    axis.set_title("Mean MFCC (librosa, c1-c12) per label")
    fig.colorbar(image)
    _save(fig, path)


def markdown(summary: dict[str, CorpusSummary]) -> str:
    lines = ["# Corpus exploration", ""]
    for corpus, info in summary.items():
        s = info.seconds
        lines += [f"## {corpus}: {info.files} files, {info.speakers} speakers, {s.total / 60:.1f} min "
                  f"(clips {s.min}-{s.max} s, mean {s.mean} s, after trimming silence)", "",
                  "| label | files | mean s | RMS dBFS | f0 Hz | centroid Hz | ZCR |", "|---|---|---|---|---|---|---|"]
        for label, m in info.per_label.items():
            cells = " | ".join(_cell(v, d) for v, d in ((m.seconds, 2), (m.rms_db, 1), (m.pitch_hz, 0),
                                                          (m.centroid_hz, 0), (m.zero_crossing_rate, 3)))
            lines.append(f"| {label} | {info.labels[label]} | {cells} |")
        lines.append("")
    lines += ["![class balance](class_balance.png)", "![waveforms](waveforms.png)",
              "![spectrograms](spectrograms.png)", "![distributions](feature_distributions.png)",
              "![MFCC per label](mfcc_by_label.png)", ""]
    return "\n".join(lines)


def explore(data: tuple[Path, ...], out_dir: Path, corpus: str = "auto", limit: int = 0,
            params: FeatureParams = FeatureParams()) -> dict[str, CorpusSummary]:
    dataset = load_corpora(data, corpus, limit, params.sample_rate, default_cache_dir())
    if not dataset.utterances:
        raise DatasetError("no readable labelled audio to explore")
    stats = [utterance_stats(a, params.sample_rate, u.label, u.corpus) for a, u in zip(dataset.audio, dataset.utterances)]
    summary = summarise(dataset, stats)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps({c: asdict(info) for c, info in summary.items()}, indent=2) + "\n")
    (out_dir / "utterances.json").write_text(json.dumps(
        [{**{k: (v if not isinstance(v, float) or np.isfinite(v) else None) for k, v in asdict(s).items()},
          "path": str(u.path), "speaker": u.speaker} for s, u in zip(stats, dataset.utterances)]) + "\n")
    plot_class_balance(summary, out_dir / "class_balance.png")
    plot_examples(dataset, params, out_dir)
    plot_distributions(stats, out_dir / "feature_distributions.png")
    plot_mfcc_by_label(dataset, params.sample_rate, out_dir / "mfcc_by_label.png")
    (out_dir / "report.md").write_text(markdown(summary))
    return summary
