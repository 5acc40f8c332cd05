"""Classifying recorded audio: a file -> trimmed clip -> overlapping windows -> mean probabilities.

By default the same steps the training pipeline scores its test clips with (`train/evaluate.py`),
so a file classified here gets the probabilities the evaluation report counted. `trim="window"`
instead cuts every window to its own loud span, as `listen` does (better for long recordings with
pauses); `trim="none"` cuts nothing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.audio import is_audio_file, read_audio
from edge.corpora import parse_any
from edge.runtime import EdgeModel
from edge.windowing import clip_features, trim_silence, window_starts


@dataclass(frozen=True)
class WindowResult:
    start: float  # seconds into the clip (after the clip's silent ends are cut, with trim="clip")
    end: float
    label: str
    confidence: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class ClipResult:
    path: str
    label: str
    confidence: float
    probabilities: dict[str, float]
    duration: float  # seconds of audio in the file
    windows: list[WindowResult] = field(default_factory=list)

    def to_dict(self, with_windows: bool = False) -> dict:
        data = asdict(self)
        if not with_windows:
            data.pop("windows")
        return data


def labelled(probabilities: np.ndarray, labels: tuple[str, ...]) -> tuple[str, float, dict[str, float]]:
    """(top label, its probability, label -> probability rounded for printing and JSON)."""
    best = int(np.argmax(probabilities))
    return labels[best], float(probabilities[best]), {l: round(float(p), 6) for l, p in zip(labels, probabilities)}


TRIM_MODES = ("clip", "window", "none")


def window_probabilities(model: EdgeModel, signal: np.ndarray, hop_seconds: float,
                         trim_windows: bool = False) -> tuple[np.ndarray, list[int]]:
    """Probabilities of every window of a clip and the windows' start samples. The windows and their
    features come from `clip_features`, the function the training evaluation scores clips with."""
    params = model.bundle.params
    hop = max(1, int(round(hop_seconds * params.sample_rate)))  # as clip_features rounds it
    starts = window_starts(max(signal.size, params.window_samples), params.window_samples, hop)  # short clips repeat
    return model.predict_batch(clip_features(signal, params, hop_seconds, trim_windows)), starts


def classify_signal(model: EdgeModel, signal: np.ndarray, path: str = "", trim: str = "clip",
                    hop_seconds: float | None = None) -> ClipResult:
    """One clip at the model's rate -> its label. trim: "clip" cuts the clip's silent ends first, as
    training did; "window" cuts each window's instead, as listen does; "none" cuts nothing."""
    if trim not in TRIM_MODES:
        raise ValueError(f"trim must be one of {', '.join(TRIM_MODES)}, got {trim!r}")
    params = model.bundle.params
    clip = trim_silence(signal) if trim == "clip" else signal
    hop_seconds = model.bundle.clip_hop_seconds if hop_seconds is None else hop_seconds
    probabilities, starts = window_probabilities(model, clip, hop_seconds, trim_windows=trim == "window")
    rate = params.sample_rate
    windows = [WindowResult(s / rate, (s + params.window_samples) / rate, *labelled(p, model.labels))
               for s, p in zip(starts, probabilities)]
    label, confidence, table = labelled(probabilities.mean(axis=0), model.labels)
    return ClipResult(path, label, confidence, table, signal.size / rate, windows)


def classify_file(model: EdgeModel, path: str | Path, trim: str = "clip", hop_seconds: float | None = None) -> ClipResult:
    """Any file soundfile reads, any rate or channel count."""
    signal = read_audio(path, model.bundle.params.sample_rate)
    return classify_signal(model, signal, str(path), trim, hop_seconds)


def expand_audio_paths(paths: list[Path]) -> list[Path]:
    """Files as given (even if not audio: the error is reported per file); folders -> their audio files."""
    expanded: list[Path] = []
    for path in map(Path, paths):
        expanded += sorted(p for p in path.rglob("*") if is_audio_file(p)) if path.is_dir() else [path]
    return expanded


def true_label(path: Path) -> str | None:
    """The label a corpus-convention file name carries (RAVDESS, TESS, CREMA-D, SAVEE, EmoDB), else None."""
    parsed = parse_any(Path(path))
    return parsed[1].label if parsed else None
