"""On-the-fly augmentation, directly: each step does what its docstring says, on generated signals."""
import numpy as np
import pytest

from edge.features import FeatureParams, frame_features
from train.augment import (
    add_at_snr,
    add_noise,
    augmented_window,
    band_pass,
    change_speed,
    coloured_noise,
    exponential_reverb,
    mask_features,
    peaking_filter,
    random_crop,
    warp_frequencies,
    wide_world,
)
from train.config import AugmentConfig

pytestmark = pytest.mark.host

RATE = 16000


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def test_a_crop_is_a_piece_of_the_signal_and_a_short_clip_is_repeated_first():
    rng = np.random.default_rng(0)
    signal = np.arange(10_000, dtype=np.float32)
    crop = random_crop(signal, 4000, rng)
    assert len(crop) == 4000 and np.all(np.diff(crop) == 1)  # contiguous
    assert len(random_crop(signal[:1000], 4000, rng)) == 4000


def test_speed_changes_the_length_by_the_factor():
    assert len(change_speed(tone(1.0), 1.1)) == pytest.approx(RATE / 1.1, abs=2)
    assert len(change_speed(tone(1.0), 0.9)) == pytest.approx(RATE / 0.9, abs=2)


def test_noise_is_added_at_the_asked_signal_to_noise_ratio():
    signal = tone(1.0)
    noisy = add_noise(signal, 20.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(signal ** 2) / np.mean((noisy - signal) ** 2))
    assert snr == pytest.approx(20.0, abs=0.5)


def test_the_microphone_band_removes_what_is_outside_it():
    low, high = tone(1.0, 50.0), tone(1.0, 6000.0)
    inside = tone(1.0, 1000.0)
    band = (300.0, 3400.0)
    assert np.std(band_pass(low, band, RATE)[4000:]) < 0.05 * np.std(low)
    assert np.std(band_pass(high, band, RATE)[4000:]) < 0.05 * np.std(high)
    assert np.std(band_pass(inside, band, RATE)[4000:]) > 0.9 * np.std(inside)


def test_specaugment_masks_are_zero_bands_within_their_limits():
    config = AugmentConfig(time_masks=1, time_mask_frames=20, feature_masks=1, feature_mask_width=6)
    matrix = np.ones((198, 40), dtype=np.float32)
    masked = mask_features(matrix, config, np.random.default_rng(3))
    zero_rows, zero_cols = np.all(masked == 0, axis=1).sum(), np.all(masked == 0, axis=0).sum()
    assert zero_rows <= 20 and zero_cols <= 6
    assert np.array_equal(matrix, np.ones((198, 40)))  # the input is not changed


def loudest_band(signal: np.ndarray, params: FeatureParams) -> int:
    return int(np.argmax(frame_features(signal, params).mean(axis=0)))


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_a_frequency_warp_moves_a_tone_as_far_as_the_factor_says(factor: float):
    params = FeatureParams()
    warped = warp_frequencies(frame_features(tone(0.5, 1000.0), params), factor, params)
    assert int(np.argmax(warped.mean(axis=0))) == loudest_band(tone(0.5, 1000.0 * factor), params)
    assert loudest_band(tone(0.5, 1000.0 * factor), params) != loudest_band(tone(0.5, 1000.0), params)


def test_a_frequency_warp_by_one_changes_nothing():
    params = FeatureParams()
    frames = frame_features(tone(0.5, 700.0), params)
    np.testing.assert_allclose(warp_frequencies(frames, 1.0, params), frames, atol=1e-5)


def test_an_augmented_window_has_the_model_input_shape_and_off_means_a_plain_crop():
    params = FeatureParams()
    signal = tone(3.0)
    window = augmented_window(signal, params, AugmentConfig(room_probability=1.0, warp_probability=1.0),
                              np.random.default_rng(0))
    assert window.shape == (params.frames_per_window, params.n_features) and np.isfinite(window).all()
    plain = augmented_window(signal, params, AugmentConfig(enabled=False), np.random.default_rng(0))
    assert plain.shape == window.shape and not np.array_equal(plain, window)


def measured_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean) ** 2)))


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_coloured_noise_has_unit_variance_and_its_spectrum_falls_as_the_exponent_says(exponent: float):
    noise = coloured_noise(RATE * 4, exponent, np.random.default_rng(1))
    assert noise.shape == (RATE * 4,) and np.std(noise) == pytest.approx(1.0)
    power = np.abs(np.fft.rfft(noise)) ** 2
    frequencies = np.fft.rfftfreq(noise.size, 1 / RATE)
    low, high = power[(frequencies > 200) & (frequencies < 400)].mean(), power[(frequencies > 3200) & (frequencies < 6400)].mean()
    # four octaves up: 10 log10(16^exponent) dB down
    assert 10 * np.log10(low / high) == pytest.approx(12.04 * exponent, abs=1.5)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_noise_of_any_kind_is_added_at_the_asked_snr(snr_db: float):
    signal = tone(1.0)
    noisy = add_at_snr(signal, coloured_noise(signal.size, 2.0, np.random.default_rng(0)), snr_db)
    assert noisy.shape == signal.shape and measured_snr(signal, noisy) == pytest.approx(snr_db, abs=0.01)


def test_a_peaking_filter_raises_its_centre_by_its_gain_and_leaves_far_frequencies_alone():
    def gain_db(hz: float) -> float:
        heard = peaking_filter(tone(1.0, hz), RATE, 1000.0, 9.0, 2.0)
        return float(20 * np.log10(np.std(heard[4000:]) / np.std(tone(1.0, hz)[4000:])))

    assert gain_db(1000.0) == pytest.approx(9.0, abs=0.2)
    assert abs(gain_db(6000.0)) < 0.5 and abs(gain_db(100.0)) < 0.5


def test_exponential_reverb_keeps_the_length_and_its_tail_decays_by_60_db_over_rt60():
    impulse = np.zeros(RATE, dtype=np.float32)
    impulse[0] = 1.0
    response = exponential_reverb(impulse, RATE, 0.5, 1.0, np.random.default_rng(0))
    assert response.shape == impulse.shape and response[0] == pytest.approx(1.0, abs=1e-6)
    assert np.sum(response[1:] ** 2) == pytest.approx(1.0, rel=0.01)  # tail energy / direct energy
    early, late = np.mean(response[1:800] ** 2), np.mean(response[7200:8000] ** 2)  # 0.45 s apart: 54 dB
    assert 10 * np.log10(early / late) == pytest.approx(54.0, abs=4)


def test_the_wide_world_keeps_shape_and_peak_and_repeats_with_the_seed():
    config = AugmentConfig(wide_probability=1.0, wide_stage_probability=1.0)
    signal = tone(2.0)
    heard = wide_world(signal, RATE, config, np.random.default_rng(5))
    assert heard.shape == signal.shape and heard.dtype == np.float32 and np.isfinite(heard).all()
    assert np.max(np.abs(heard)) == pytest.approx(np.max(np.abs(signal)))
    assert np.array_equal(heard, wide_world(signal, RATE, config, np.random.default_rng(5)))
    assert not np.array_equal(heard, wide_world(signal, RATE, config, np.random.default_rng(6)))


def test_the_wide_world_adds_its_noise_within_its_snr_range():
    config = AugmentConfig(wide_probability=1.0, wide_stage_probability=1.0, wide_snr_db=(12.0, 12.0),
                           wide_rt60_seconds=(0.1, 0.1), wide_eq_gain_db=0.0)
    signal = tone(2.0, 1000.0)
    heard = wide_world(signal, RATE, config, np.random.default_rng(3))
    # the speech-band tone passes band and flat microphone, so the tone's share of the power against the
    # rest says the SNR (reverberation of a pure tone stays a tone at the same frequency)
    spectrum = np.abs(np.fft.rfft(heard.astype(np.float64))) ** 2
    tone_bins = np.abs(np.fft.rfftfreq(heard.size, 1 / RATE) - 1000.0) < 3
    assert 10 * np.log10(spectrum[tone_bins].sum() / spectrum[~tone_bins].sum()) == pytest.approx(12.0, abs=1.5)


def test_wide_probability_zero_leaves_the_default_windows_unchanged_and_one_changes_them():
    params, signal = FeatureParams(), tone(3.0)
    default = augmented_window(signal, params, AugmentConfig(), np.random.default_rng(2))
    off = augmented_window(signal, params, AugmentConfig(wide_probability=0.0), np.random.default_rng(2))
    assert np.array_equal(default, off)
    wide = augmented_window(signal, params, AugmentConfig(wide_probability=1.0), np.random.default_rng(2))
    assert wide.shape == default.shape and np.isfinite(wide).all() and not np.array_equal(wide, default)
