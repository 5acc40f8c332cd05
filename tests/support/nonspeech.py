"""Generated non-speech: the sounds a device in a room meets that are not a voice.

Noise of three colours, mains hum, tones, a chord, a sweep, clicks, a fan, an engine, a doorbell,
typing, rain, music-like notes, DC and silence, each at a few levels. Used by the VAD tests, the
hostile-input tests and `benchmarks/vad_compare.py`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

RATE = 16000


def _noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    return np.fft.irfft(spectrum / freqs ** (exponent / 2), n)


def _tones(t: np.ndarray, freqs: list[float], decay: float = 0.0) -> np.ndarray:
    return sum(np.sin(2 * np.pi * f * t) for f in freqs) * np.exp(-decay * t)


def _hum(t: np.ndarray, mains: float) -> np.ndarray:
    return sum(np.sin(2 * np.pi * mains * k * t) / k for k in range(1, 9))


def _clicks(n: int, rng: np.random.Generator, per_second: float, regular: bool) -> np.ndarray:
    signal = np.zeros(n)
    count = int(per_second * n / RATE)
    starts = (np.arange(count) * n // max(count, 1)) if regular else rng.integers(0, n - 200, count)
    burst = rng.standard_normal(200) * np.exp(-np.arange(200) / 30)
    for start in starts:
        signal[start: start + 200] += burst[: n - start]
    return signal


def _fan(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low = np.convolve(rng.standard_normal(t.size), np.ones(8) / 8, mode="same")  # a gentle low-pass
    return low + 0.3 * _tones(t, [120.0, 240.0])


def _engine(t: np.ndarray) -> np.ndarray:
    return sum(np.sin(2 * np.pi * 31 * k * t) / k for k in range(1, 12)) * (1 + 0.3 * np.sin(2 * np.pi * 4 * t))


def _notes(t: np.ndarray) -> np.ndarray:
    """Four plucked notes a second (a music box), each a harmonic tone that decays."""
    pitches = [262.0, 330.0, 392.0, 523.0]
    out = np.zeros(t.size)
    step = RATE // 4
    for i, start in enumerate(range(0, t.size, step)):
        seg = t[: min(step, t.size - start)]
        out[start: start + seg.size] = _tones(seg, [pitches[i % 4], 2 * pitches[i % 4]], decay=6.0)
    return out


def _rain(n: int, rng: np.random.Generator) -> np.ndarray:
    return 0.3 * rng.standard_normal(n) + _clicks(n, rng, 40, regular=False)


def _sweep(t: np.ndarray) -> np.ndarray:
    seconds = t[-1] if t.size else 1.0
    return np.sin(2 * np.pi * (100 * t + (8000 - 100) * t ** 2 / (2 * seconds)))


Kind = Callable[[np.ndarray, np.random.Generator], np.ndarray]
KINDS: dict[str, Kind] = {
    "white noise": lambda t, rng: rng.standard_normal(t.size),
    "pink noise": lambda t, rng: _noise(t.size, rng, 1.0),
    "brown noise": lambda t, rng: _noise(t.size, rng, 2.0),
    "mains hum 50 Hz": lambda t, rng: _hum(t, 50.0),
    "mains hum 60 Hz": lambda t, rng: _hum(t, 60.0),
    "tone 100 Hz": lambda t, rng: _tones(t, [100.0]),
    "tone 440 Hz": lambda t, rng: _tones(t, [440.0]),
    "tone 1 kHz": lambda t, rng: _tones(t, [1000.0]),
    "tone 3 kHz": lambda t, rng: _tones(t, [3000.0]),
    "chord": lambda t, rng: _tones(t, [261.6, 329.6, 392.0]),
    "sweep": lambda t, rng: _sweep(t),
    "square wave": lambda t, rng: np.sign(np.sin(2 * np.pi * 200 * t)),
    "clicks": lambda t, rng: _clicks(t.size, rng, 2, regular=True),
    "typing": lambda t, rng: _clicks(t.size, rng, 7, regular=False),
    "fan": _fan,
    "engine": lambda t, rng: _engine(t),
    "doorbell": lambda t, rng: np.concatenate([_tones(t[: t.size // 2], [660.0], 3.0),
                                               _tones(t[: t.size - t.size // 2], [550.0], 3.0)]),
    "music box": lambda t, rng: _notes(t),
    "rain": lambda t, rng: _rain(t.size, rng),
    "hum and noise": lambda t, rng: _hum(t, 50.0) + 0.5 * rng.standard_normal(t.size),
    "DC offset": lambda t, rng: np.ones(t.size),
    "digital silence": lambda t, rng: np.zeros(t.size),
    "dither": lambda t, rng: rng.standard_normal(t.size) * 1e-4,
}
LEVELS_DBFS = (-35.0, -20.0)  # RMS: a quiet and a loud room sound


def scaled(signal: np.ndarray, level_dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(signal ** 2))) if signal.size else 0.0
    if rms == 0 or level_dbfs is None:
        return signal.astype(np.float32)
    out = signal * (10 ** (level_dbfs / 20) / rms)
    return np.clip(out, -1, 1).astype(np.float32)


def nonspeech_clips(seconds: float = 4.0, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """(name, float32 signal at 16 kHz) for every kind at every level (silence and dither: their own)."""
    t = np.arange(int(seconds * RATE)) / RATE
    clips = []
    for i, (name, make) in enumerate(KINDS.items()):
        raw = make(t, np.random.default_rng(seed + i))
        if name in ("digital silence", "dither"):
            clips.append((name, raw.astype(np.float32)))
            continue
        clips += [(f"{name} {level:.0f} dBFS", scaled(raw, level)) for level in LEVELS_DBFS]
    return clips
