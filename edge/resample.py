"""Rational-ratio resampling in numpy (no scipy, no librosa on the device).

A windowed-sinc polyphase interpolator: output sample n sits at input time n * down / up and is a
Kaiser-windowed sinc sum over the `2 * half_width` nearest input samples. The cut-off is the lower
Nyquist frequency times `ROLLOFF`. The streaming class and the batch function do the same arithmetic
for every output sample, so a microphone stream resampled chunk by chunk equals the whole file
resampled at once.
"""
from __future__ import annotations

import functools
import math

import numpy as np

ZERO_CROSSINGS = 16  # sinc lobes kept each side: ~70 dB stop band with the Kaiser window below
KAISER_BETA = 8.6  # Kaiser's beta for ~-90 dB side lobes (Kaiser & Schafer 1980)
ROLLOFF = 0.945  # pass band edge as a fraction of the lower Nyquist (resampy/soxr-like default)
BLOCK_TAPS = 1 << 20  # output samples x filter taps computed per vectorised step: ~12 MB of temporaries at any ratio


@functools.lru_cache(maxsize=8)
def _polyphase_table(up: int, down: int) -> tuple[np.ndarray, int]:
    """(up, 2*half_width) filter taps, one row per output phase, and half_width in input samples."""
    cutoff = 0.5 * ROLLOFF * min(1.0, up / down)  # cycles per input sample
    half_width = int(math.ceil(ZERO_CROSSINGS / (2 * cutoff)))
    phases = np.arange(up)[:, None] / up
    taps = np.arange(2 * half_width)[None, :]
    tau = phases + (half_width - 1) - taps  # distance from each input tap to the output instant
    kaiser = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (tau / half_width) ** 2, 0, None))) / np.i0(KAISER_BETA)
    table = 2 * cutoff * np.sinc(2 * cutoff * tau) * kaiser
    return table.astype(np.float32), half_width


class Resampler:
    """Streaming resampler from `rate_in` to `rate_out`; `process` chunks, then `flush` at the end."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
        g = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.passthrough = self.up == self.down
        if not self.passthrough:
            self.table, self.half_width = _polyphase_table(self.up, self.down)
        self.reset()

    def reset(self) -> None:
        hw = 0 if self.passthrough else self.half_width
        self._buffer = np.zeros(hw, dtype=np.float32)  # zeros stand for the samples before t = 0
        self._buffer_start = -hw  # input index of _buffer[0]
        self._next_output = 0
        self._consumed = 0  # real input samples seen

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32)
        self._consumed += chunk.size
        if self.passthrough:
            return chunk.copy()
        self._buffer = np.concatenate((self._buffer, chunk))
        available = self._buffer_start + self._buffer.size  # input index one past the end
        # output n needs input up to floor(n * down / up) + half_width
        end = -(-((available - self.half_width) * self.up) // self.down)
        return self._emit(max(end, self._next_output))

    def flush(self) -> np.ndarray:
        """Outputs that need samples past the end (zeros), up to ceil(inputs * up / down) in all."""
        if self.passthrough:
            return np.zeros(0, dtype=np.float32)
        self._buffer = np.concatenate((self._buffer, np.zeros(self.half_width, dtype=np.float32)))
        total = -(-(self._consumed * self.up) // self.down)
        return self._emit(max(total, self._next_output))

    def _emit(self, end: int) -> np.ndarray:
        block = max(1, BLOCK_TAPS // (2 * self.half_width))
        pieces = [self._compute(start, min(start + block, end)) for start in range(self._next_output, end, block)]
        self._next_output = end
        lowest_needed = (end * self.down) // self.up - self.half_width + 1
        drop = max(0, lowest_needed - self._buffer_start)
        self._buffer, self._buffer_start = self._buffer[drop:], self._buffer_start + drop
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def _compute(self, start: int, end: int) -> np.ndarray:
        n = np.arange(start, end, dtype=np.int64)
        base = (n * self.down) // self.up
        phase = (n * self.down) % self.up
        index = base[:, None] - self.half_width + 1 + np.arange(2 * self.half_width)[None, :]
        samples = self._buffer[index - self._buffer_start]
        return np.einsum("ij,ij->i", samples, self.table[phase]).astype(np.float32)


def resample(signal: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Whole-signal resampling; identical to streaming it through `Resampler` in any chunks."""
    resampler = Resampler(rate_in, rate_out)
    return np.concatenate((resampler.process(signal), resampler.flush()))
