"""Cutting clips into model windows: trimming, repeating short clips, overlapping windows."""
from __future__ import annotations

import numpy as np

TRIM_TOP_DB = 30.0  # silence = 30 dB below the clip's loudest frame (best setting in DESIGN.md)
TRIM_FRAME = 400  # 25 ms at 16 kHz
TRIM_HOP = 160


def trim_silence(signal: np.ndarray, top_db: float = TRIM_TOP_DB) -> np.ndarray:
    """Cut leading and trailing frames quieter than `top_db` below the loudest frame."""
    if signal.size < TRIM_FRAME:
        return signal
    frames = np.lib.stride_tricks.sliding_window_view(signal, TRIM_FRAME)[::TRIM_HOP]
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    if power.max() <= 0:
        return signal
    loud = np.flatnonzero(power >= power.max() * 10 ** (-top_db / 10))
    return signal[loud[0] * TRIM_HOP : loud[-1] * TRIM_HOP + TRIM_FRAME]


def fit_to_length(signal: np.ndarray, length: int) -> np.ndarray:
    """Repeat a clip shorter than `length` until it fills it (repeating beat zero-padding, DESIGN.md)."""
    if signal.size == 0:
        return np.zeros(length, dtype=np.float32)
    if signal.size >= length:
        return signal
    return np.tile(signal, -(-length // signal.size))[:length]


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Starts of windows every `hop` samples, plus one flush with the end so no tail is lost."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] != n_samples - window:
        starts.append(n_samples - window)
    return starts


def clip_windows(signal: np.ndarray, window: int, hop: int) -> list[np.ndarray]:
    """A clip -> the list of `window`-sample windows a classifier averages over."""
    fitted = fit_to_length(signal, window)
    return [fitted[start : start + window] for start in window_starts(fitted.size, window, hop)]


CLIP_HOP_SECONDS = 0.5  # windows of a clip overlap by all but half a second


def clip_features(signal: np.ndarray, params, hop_seconds: float = CLIP_HOP_SECONDS) -> np.ndarray:
    """All model inputs of one clip: (n_windows, frames_per_window, n_features)."""
    from edge.features import features_for_window

    hop = max(1, int(round(hop_seconds * params.sample_rate)))
    return np.stack([features_for_window(w, params) for w in clip_windows(signal, params.window_samples, hop)])
