"""On-the-fly augmentation: waveform (crop = time shift, speed, room or the wide world, gain, noise), then SpecAugment masks."""
from __future__ import annotations

import numpy as np

from edge.features import FeatureParams, frame_features, hz_to_mel, mel_band_edges_hz, window_features
from edge.windowing import fit_to_length
from train.config import AugmentConfig


def random_crop(signal: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random `length`-sample window: the time shift (short clips are repeated first)."""
    fitted = fit_to_length(signal, length)
    start = int(rng.integers(0, fitted.size - length + 1))
    return fitted[start:start + length]


def change_speed(signal: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (pitch moves with it), by linear interpolation."""
    positions = np.arange(0, signal.size - 1, factor)
    return np.interp(positions, np.arange(signal.size), signal).astype(np.float32)


def add_noise(signal: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(signal.astype(np.float64) ** 2)) or 1e-10
    noise = rng.standard_normal(signal.size).astype(np.float32)
    return signal + noise * np.float32(np.sqrt(power / 10 ** (snr_db / 10)))


def simulated_room(signal: np.ndarray, sample_rate: int, config: AugmentConfig,
                   rng: np.random.Generator) -> np.ndarray:
    """`signal` as a cheap microphone in a room hears it: convolved with a synthetic impulse response
    (a direct path plus noise decaying by 60 dB over a random RT60), then band-limited."""
    from scipy.signal import fftconvolve

    rt60 = float(rng.uniform(*config.rt60_seconds))
    time = np.arange(int(rt60 * sample_rate)) / sample_rate
    response = rng.standard_normal(time.size) * np.exp(-6.91 * time / rt60)  # ln(1000) = 6.91: -60 dB at rt60
    response *= float(rng.uniform(0.1, 0.5)) / np.sqrt(np.sum(response ** 2))  # reverberant / direct energy
    response[0] = 1.0
    wet = fftconvolve(signal, response)[: signal.size]
    low, high = float(rng.uniform(*config.highpass_hz)), float(rng.uniform(*config.lowpass_hz))
    band = (low, min(high, 0.95 * sample_rate / 2))
    return with_peak_of(band_pass(wet, band, sample_rate), signal)


def exponential_reverb(signal: np.ndarray, sample_rate: int, rt60: float, reverberant_ratio: float,
                       rng: np.random.Generator) -> np.ndarray:
    """`signal` convolved with a direct path plus Gaussian noise decaying by 60 dB over `rt60` seconds, the
    decaying tail carrying `reverberant_ratio` times the direct path's energy."""
    from scipy.signal import fftconvolve

    time = np.arange(max(1, int(rt60 * sample_rate))) / sample_rate
    response = rng.standard_normal(time.size) * np.exp(-6.91 * time / rt60)  # ln(1000) = 6.91: -60 dB at rt60
    response *= np.sqrt(reverberant_ratio / np.sum(response ** 2))
    response[0] = 1.0
    return fftconvolve(signal, response)[: signal.size]


def coloured_noise(count: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise whose power spectrum falls as 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(count))
    spectrum /= np.maximum(np.arange(spectrum.size), 1) ** (exponent / 2)
    noise = np.fft.irfft(spectrum, count)
    return noise / (np.std(noise) or 1.0)


def add_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`signal` plus `noise` scaled so that the signal's power is `snr_db` above the noise's."""
    power = float(np.mean(np.asarray(signal, dtype=np.float64) ** 2)) or 1e-10
    noise_power = float(np.mean(np.asarray(noise, dtype=np.float64) ** 2)) or 1e-10
    return signal + noise * np.sqrt(power / noise_power / 10 ** (snr_db / 10))


def peaking_filter(signal: np.ndarray, sample_rate: int, centre_hz: float, gain_db: float, q: float) -> np.ndarray:
    """One peaking equaliser (the biquad of R. Bristow-Johnson's Audio EQ Cookbook): `gain_db` at `centre_hz`,
    a bandwidth of centre / `q`, unity gain far from it."""
    from scipy.signal import lfilter

    amplitude, omega = 10 ** (gain_db / 40), 2 * np.pi * centre_hz / sample_rate
    alpha = np.sin(omega) / (2 * q)
    b = [1 + alpha * amplitude, -2 * np.cos(omega), 1 - alpha * amplitude]
    a = [1 + alpha / amplitude, -2 * np.cos(omega), 1 - alpha / amplitude]
    return lfilter(b, a, signal)


def random_microphone(signal: np.ndarray, sample_rate: int, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """A microphone's uneven response: `wide_eq_filters` peaking filters at random centres (100 Hz to 0.9 x
    Nyquist, log-uniform), gains and widths."""
    for _ in range(config.wide_eq_filters):
        centre = float(np.exp(rng.uniform(np.log(100.0), np.log(0.45 * sample_rate))))
        gain = float(rng.uniform(-config.wide_eq_gain_db, config.wide_eq_gain_db))
        signal = peaking_filter(signal, sample_rate, centre, gain, float(rng.uniform(0.5, 4.0)))
    return signal


def wide_world(signal: np.ndarray, sample_rate: int, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """`signal` through the wide training world: each stage (reverberation, microphone response, band,
    broadband noise) with probability `wide_stage_probability`, in the order sound meets them."""
    heard, chance = np.asarray(signal, dtype=np.float64), config.wide_stage_probability
    if rng.random() < chance:
        heard = exponential_reverb(heard, sample_rate, float(rng.uniform(*config.wide_rt60_seconds)),
                                   float(np.exp(rng.uniform(np.log(0.1), np.log(10.0)))), rng)
    if rng.random() < chance:
        heard = random_microphone(heard, sample_rate, config, rng)
    if rng.random() < chance:
        low, high = float(rng.uniform(*config.wide_highpass_hz)), float(rng.uniform(*config.wide_lowpass_hz))
        heard = band_pass(heard, (low, min(high, 0.95 * sample_rate / 2)), sample_rate)
    if rng.random() < chance:
        noise = coloured_noise(heard.size, float(rng.uniform(*config.wide_noise_exponent)), rng)
        heard = add_at_snr(heard, noise, float(rng.uniform(*config.wide_snr_db)))
    return with_peak_of(heard, signal)


def band_pass(signal: np.ndarray, band: tuple[float, float], sample_rate: int) -> np.ndarray:
    """A microphone's band: 4th-order Butterworth band-pass (second-order sections)."""
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, band, btype="bandpass", fs=sample_rate, output="sos"), signal)


def with_peak_of(processed: np.ndarray, original: np.ndarray) -> np.ndarray:
    """`processed` scaled to the peak level of `original`, as float32 (the level stays the gain's job)."""
    peak_before, peak_after = np.max(np.abs(original)) or 1.0, np.max(np.abs(processed)) or 1.0
    return (processed * (peak_before / peak_after)).astype(np.float32)


def warp_frequencies(log_mel: np.ndarray, factor: float, params: FeatureParams) -> np.ndarray:
    """Log-mel frames as a vocal tract `factor` times shorter would give them: what was at f Hz now
    lies at factor * f, formants and harmonics alike, while the tempo stays (each band reads the value
    interpolated at its centre / factor; edges held)."""
    centres_hz = mel_band_edges_hz(params)[1:-1]
    centres_mel = hz_to_mel(centres_hz)
    source_mel = hz_to_mel(centres_hz / factor)
    source_band = np.interp(source_mel, centres_mel, np.arange(params.n_mels))
    below = np.floor(source_band).astype(int)
    above = np.minimum(below + 1, params.n_mels - 1)
    share = (source_band - below).astype(np.float32)
    return (log_mel[:, below] * (1 - share) + log_mel[:, above] * share).astype(np.float32)


def mask_features(matrix: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """SpecAugment on the normalised window: masked cells set to 0, the per-window mean."""
    masked = matrix.copy()
    frames, width = masked.shape
    for _ in range(config.time_masks):
        size = int(rng.integers(0, config.time_mask_frames + 1))
        start = int(rng.integers(0, max(1, frames - size)))
        masked[start:start + size, :] = 0
    for _ in range(config.feature_masks):
        size = int(rng.integers(0, config.feature_mask_width + 1))
        start = int(rng.integers(0, max(1, width - size)))
        masked[:, start:start + size] = 0
    return masked


def augmented_window(signal: np.ndarray, params: FeatureParams, config: AugmentConfig,
                     rng: np.random.Generator) -> np.ndarray:
    """One training example: an augmented random window of `signal` as model input."""
    length = params.window_samples
    if not config.enabled:
        return window_features(frame_features(random_crop(signal, length, rng), params), params)
    speed = 1.0
    if rng.random() < config.speed_probability:
        speed = float(rng.uniform(*config.speed_range))
    window = random_crop(signal, int(np.ceil(length * speed)) + 1, rng)
    if speed != 1.0:
        window = change_speed(window, speed)
    window = fit_to_length(window, length)[:length]
    wide = bool(config.wide_probability) and rng.random() < config.wide_probability
    if wide:
        window = wide_world(window, params.sample_rate, config, rng)
    elif config.room_probability and rng.random() < config.room_probability:
        window = simulated_room(window, params.sample_rate, config, rng)
    window = window * np.float32(10 ** (rng.uniform(-config.gain_db, config.gain_db) / 20))
    if not wide and rng.random() < config.noise_probability:
        window = add_noise(window, float(rng.uniform(*config.snr_db)), rng)
    frames = frame_features(window, params)
    if config.warp_probability and rng.random() < config.warp_probability:
        frames = warp_frequencies(frames, float(rng.uniform(*config.warp_range)), params)
    return mask_features(window_features(frames, params), config, rng)
