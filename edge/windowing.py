"""Cutting clips into model windows: trimming, repeating short clips, overlapping windows."""
from __future__ import annotations

import math

import numpy as np

from edge.features import FeatureParams
from edge.settings import CLIP_HOP_SECONDS

TRIM_TOP_DB = 30.0  # silence = 30 dB below the clip's loudest frame (best setting in docs/design.md)
# Silence is judged on the default feature frames (25 ms every 10 ms at 16 kHz), whatever a model's own are:
# the clips every model was trained on were trimmed on these.
TRIM_FRAME, TRIM_HOP = FeatureParams.win_length, FeatureParams.hop_length


def frame_power(signal: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Mean square of each frame (`frame` samples every `hop`), summed from blocks of gcd(frame, hop)
    samples: several times faster than squaring a strided frame view, and `listen` does it every hop."""
    count = (signal.size - frame) // hop + 1
    if count <= 0:
        return np.zeros(0)
    block = math.gcd(frame, hop)
    squares = np.square(np.asarray(signal[: (count - 1) * hop + frame], dtype=np.float32))
    cumulative = np.zeros(squares.size // block + 1)
    np.cumsum(squares.reshape(-1, block).sum(axis=1, dtype=np.float64), out=cumulative[1:])
    step, width = hop // block, frame // block
    return (cumulative[width::step][:count] - cumulative[::step][:count]) / frame


def loud_span(power: np.ndarray, top_db: float = TRIM_TOP_DB) -> tuple[int, int] | None:
    """First and last frame whose power is within `top_db` of the loudest; None if all are silent
    (or the power is not finite: the readers never deliver such audio, but a caller might)."""
    if power.size == 0 or not np.isfinite(power).all() or power.max() <= 0:
        return None
    loud = np.flatnonzero(power >= power.max() * 10 ** (-top_db / 10))
    return int(loud[0]), int(loud[-1])


def trim_silence(signal: np.ndarray, top_db: float = TRIM_TOP_DB) -> np.ndarray:
    """Cut leading and trailing frames quieter than `top_db` below the loudest frame."""
    span = loud_span(frame_power(signal, TRIM_FRAME, TRIM_HOP), top_db)
    return signal if span is None else signal[span[0] * TRIM_HOP : span[1] * TRIM_HOP + TRIM_FRAME]


def trim_window_frames(frames: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Live windows hold pauses; training windows are cut from trimmed clips. So cut the window's
    feature frames to their loud span (trim_silence's rule on `power`, the mean square of the audio
    each frame covers) and repeat that span to fill the window, as `fit_to_length` repeats a short
    clip. On held-out speakers it raises window accuracy (docs/models.md "Live windows: trimming";
    benchmarks/window_trim.py)."""
    span = loud_span(power)
    if span is None or (span[0] == 0 and span[1] == len(frames) - 1):
        return frames
    loud = frames[span[0]: span[1] + 1]
    return np.tile(loud, (-(-len(frames) // len(loud)), 1))[: len(frames)]


def fit_to_length(signal: np.ndarray, length: int) -> np.ndarray:
    """Repeat a clip shorter than `length` until it fills it (repeating beat zero-padding, docs/design.md)."""
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



def clip_features(signal: np.ndarray, params: FeatureParams, hop_seconds: float = CLIP_HOP_SECONDS,
                  trim_windows: bool = False) -> np.ndarray:
    """All model inputs of one clip: (n_windows, frames_per_window, n_features). `trim_windows` cuts
    each window to its loud span first (what `listen` does; training and its evaluation do not)."""
    hop = hop_samples(hop_seconds, params.sample_rate)
    return np.stack([window_input(w, params, trim_windows) for w in clip_windows(signal, params.window_samples, hop)])


def hop_samples(hop_seconds: float, sample_rate: int) -> int:
    return max(1, int(round(hop_seconds * sample_rate)))


def window_input(window: np.ndarray, params: FeatureParams, trim_windows: bool = False) -> np.ndarray:
    """One window of audio -> the model's input (frames_per_window, n_features)."""
    from edge.features import frame_features, window_features

    frames = frame_features(window, params)
    if trim_windows:
        frames = trim_window_frames(frames, frame_power(window, params.win_length, params.hop_length))
    return window_features(frames, params)


class WindowCutter:
    """`clip_windows` for a stream: push blocks of a clip, get (start, window) as soon as each window's
    samples have arrived; `finish` gives the window flush with the end (or the repeated short clip).
    Holds at most a window and a block of audio, whatever the clip's length."""

    def __init__(self, window: int, hop: int) -> None:
        self.window, self.hop = window, hop
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # clip index of _buffer[0]
        self._next_start = 0
        self.total = 0

    def push(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        self._buffer = np.concatenate((self._buffer, samples))
        self.total += samples.size
        windows = []
        while self._next_start + self.window <= self.total:
            offset = self._next_start - self._buffer_start
            windows.append((self._next_start, self._buffer[offset: offset + self.window]))
            self._next_start += self.hop
        keep_from = max(0, min(self._next_start, self.total - self.window))  # the tail window may still be needed
        drop = max(0, keep_from - self._buffer_start)
        self._buffer, self._buffer_start = self._buffer[drop:], self._buffer_start + drop
        return windows

    def finish(self) -> list[tuple[int, np.ndarray]]:
        if self.total <= self.window:
            return [] if self.total == self.window else [(0, fit_to_length(self._buffer, self.window))]
        last = self.total - self.window
        already = last % self.hop == 0  # window_starts: a start every hop, plus one flush with the end
        return [] if already else [(last, self._buffer[last - self._buffer_start:])]


class LoudSpan:
    """`trim_silence`'s span for a stream: push blocks, then `span()` = the clip samples to keep."""

    def __init__(self, top_db: float = TRIM_TOP_DB) -> None:
        self.top_db = top_db
        self._carry = np.zeros(0, dtype=np.float32)
        self._power: list[np.ndarray] = []
        self.total = 0

    def push(self, samples: np.ndarray) -> None:
        self.total += samples.size
        buffer = np.concatenate((self._carry, samples))
        power = frame_power(buffer, TRIM_FRAME, TRIM_HOP)
        self._power.append(power)
        self._carry = buffer[power.size * TRIM_HOP:]

    def span(self) -> tuple[int, int]:
        power = np.concatenate(self._power) if self._power else np.zeros(0)
        frames = loud_span(power, self.top_db)
        return (0, self.total) if frames is None else (frames[0] * TRIM_HOP, frames[1] * TRIM_HOP + TRIM_FRAME)
