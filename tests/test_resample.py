"""The numpy resampler: accuracy on tones, streaming == batch, lengths."""
import numpy as np
import pytest

from edge.resample import Resampler, resample


def tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate).astype(np.float32)


@pytest.mark.parametrize("rate_in", [48000, 44100, 22050, 8000])
def test_tone_survives_resampling(rate_in):
    out = resample(tone(440.0, rate_in), rate_in, 16000)
    assert out.size == 16000
    expected = tone(440.0, 16000)
    core = slice(200, -200)  # away from the zero-padded edges
    assert np.max(np.abs(out[core] - expected[core])) < 2e-3


def test_alias_above_new_nyquist_is_removed():
    out = resample(tone(11000.0, 48000), 48000, 16000)  # would alias to 5 kHz
    assert np.sqrt(np.mean(out[200:-200] ** 2)) < 1e-3


@pytest.mark.parametrize("chunk", [1, 441, 1024, 4800])
def test_streaming_equals_batch(chunk):
    signal = np.random.default_rng(1).standard_normal(44100 // 2).astype(np.float32)
    resampler = Resampler(44100, 16000)
    pieces = [resampler.process(signal[i : i + chunk]) for i in range(0, signal.size, chunk)]
    streamed = np.concatenate(pieces + [resampler.flush()])
    np.testing.assert_allclose(streamed, resample(signal, 44100, 16000), atol=1e-6)


def test_same_rate_is_a_copy():
    signal = tone(100.0, 16000)
    np.testing.assert_array_equal(resample(signal, 16000, 16000), signal)
