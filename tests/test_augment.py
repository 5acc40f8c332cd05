"""On-the-fly augmentation, directly: each step does what its docstring says, on generated signals."""
import numpy as np
import pytest

from edge.features import FeatureParams, frame_features
from train.augment import add_noise, augmented_window, band_pass, change_speed, mask_features, random_crop, warp_frequencies
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
