"""The one feature definition: parity with librosa, streaming == batch, windows, conversions."""
import numpy as np
import pytest

from edge.features import (
    FeatureParams,
    FeatureParamsError,
    StreamingFeatures,
    features_for_window,
    float_to_pcm16,
    frame_features,
    n_frames,
    pcm16_to_float,
    window_features,
)


def speech_like(seconds: float = 3.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic tone with vibrato and an amplitude envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t) ** 2
    return (0.2 * voiced * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def librosa_reference(signal: np.ndarray, p: FeatureParams) -> np.ndarray:
    """librosa configured like edge.features (see the module docstring for each convention).

    librosa centres a win_length window inside an n_fft frame, so its frame i starts
    (n_fft - win_length) / 2 samples later than ours: shift the signal by that much.
    """
    librosa = pytest.importorskip("librosa")
    import scipy.fft

    emphasized = np.concatenate(([signal[0]], signal[1:] - p.preemphasis * signal[:-1]))
    offset = (p.n_fft - p.win_length) // 2
    padded = np.concatenate((np.zeros(offset, np.float32), emphasized))
    mel = librosa.feature.melspectrogram(
        y=padded, sr=p.sample_rate, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
        window="hann", center=False, power=2.0, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax, htk=True, norm=None,
    ).T
    log_mel = np.log(mel + p.log_floor)
    return scipy.fft.dct(log_mel, type=2, norm="ortho", axis=1)[:, : p.n_mfcc] if p.n_mfcc else log_mel


@pytest.mark.parametrize("n_mfcc", [40, 13, 0])
def test_matches_librosa_within_tolerance(n_mfcc):
    # Tolerance: 1e-4 absolute on log-energy values of order 1-30 (measured: 3e-6), float32 round-off of the
    # FFT and mel products accumulated in two different orders; a convention mismatch (window,
    # mel scale, centring, log) shows up as errors of 0.1 or more.
    params = FeatureParams(n_mfcc=n_mfcc, n_mels=40)
    signal = speech_like()
    ours = frame_features(signal, params)
    reference = librosa_reference(signal, params)
    count = min(len(ours), len(reference))
    assert count >= 290
    np.testing.assert_allclose(ours[:count], reference[:count], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("chunk", [160, 1024, 4000, 1, 401])
def test_streaming_equals_batch(chunk):
    params = FeatureParams()
    signal = speech_like(seconds=2.3)
    stream = StreamingFeatures(params)
    streamed = np.concatenate([stream.push(signal[i : i + chunk]) for i in range(0, signal.size, chunk)])
    batch = frame_features(signal, params)
    assert streamed.shape == batch.shape == (n_frames(signal.size, params), params.n_coefficients)
    np.testing.assert_allclose(streamed, batch, rtol=1e-5, atol=1e-5)


def test_streaming_reset_forgets_the_past():
    params = FeatureParams()
    signal = speech_like(seconds=1.0)
    stream = StreamingFeatures(params)
    stream.push(speech_like(seconds=0.37, seed=3))
    stream.reset()
    np.testing.assert_allclose(stream.push(signal), frame_features(signal, params), rtol=1e-5, atol=1e-5)


def test_streaming_buffer_stays_bounded():
    params = FeatureParams()
    stream = StreamingFeatures(params)
    for _ in range(200):
        stream.push(np.zeros(1000, np.float32))
        assert stream._pending.size < params.win_length + params.hop_length


def test_window_shape_and_normalisation():
    params = FeatureParams(deltas=2)
    window = features_for_window(speech_like(seconds=2.0), params)
    assert window.shape == (params.frames_per_window, params.n_features) == (198, 120)
    np.testing.assert_allclose(window.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(window.std(axis=0), 1, atol=1e-2)


def test_window_mean_normalisation_keeps_each_bands_swing():
    signal = speech_like(seconds=2.0)
    unscaled = features_for_window(signal, FeatureParams(normalisation="none"))
    centred = features_for_window(signal, FeatureParams(normalisation="window_mean"))
    np.testing.assert_allclose(centred.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(centred.std(axis=0), unscaled.std(axis=0), rtol=1e-4)
    louder = features_for_window(signal * 4, FeatureParams(normalisation="window_mean"))
    np.testing.assert_allclose(louder, centred, atol=1e-2)  # a gain is a constant in the log domain (but the floor)


def test_dynamic_range_floor_makes_a_studio_pause_look_like_a_room_noise_floor():
    rng = np.random.default_rng(1)
    speech = speech_like(seconds=2.0)
    speech[8000:20000] = 0  # a pause: digital silence in a studio
    room = speech.copy()
    room[8000:20000] = 5e-5 * rng.standard_normal(12000).astype(np.float32)  # a faint hiss, 45+ dB down in every band
    params = FeatureParams(normalisation="none", dynamic_range_db=40)
    floored = features_for_window(speech, params)
    floor = floored.max() - 40 * np.log(10) / 10
    assert floored.min() >= floor - 1e-5 and np.isclose(floored.min(), floor, atol=1e-4)
    unfloored = features_for_window(speech, FeatureParams(normalisation="none"))
    np.testing.assert_allclose(floored[unfloored > floor], unfloored[unfloored > floor])
    normalised = [features_for_window(x, FeatureParams(dynamic_range_db=40)) for x in (speech, room)]
    plain = [features_for_window(x, FeatureParams()) for x in (speech, room)]
    assert np.abs(plain[0] - plain[1]).max() > 0.2  # without the floor, the hiss shows in the model's input
    np.testing.assert_allclose(normalised[0], normalised[1], atol=0.01)  # with it, the two pauses are one


def test_dynamic_range_floor_is_off_by_default_and_only_for_log_mel():
    assert FeatureParams().dynamic_range_db == 0
    assert "dynamic_range_db" not in FeatureParams().to_dict()  # bundles without the floor write as before
    assert FeatureParams(dynamic_range_db=50).to_dict()["dynamic_range_db"] == 50
    with pytest.raises(FeatureParamsError, match="needs n_mfcc 0"):
        FeatureParams(n_mfcc=13, dynamic_range_db=50)
    with pytest.raises(FeatureParamsError, match="dynamic_range_db"):
        FeatureParams(dynamic_range_db=-1)
    assert FeatureParams.from_dict({k: v for k, v in FeatureParams().to_dict().items() if k != "dynamic_range_db"}) \
        == FeatureParams()  # a bundle from before the option reads as off


def test_deltas_of_a_ramp_are_its_slope():
    frames = np.arange(20, dtype=np.float32)[:, None] * np.array([[1.0, -2.0]], np.float32)
    params = FeatureParams(n_mfcc=0, n_mels=2, deltas=1, normalisation="none")
    out = window_features(frames, params)
    np.testing.assert_allclose(out[2:-2, 2:], np.tile([[1.0, -2.0]], (16, 1)), atol=1e-6)


def test_pcm16_round_trip_is_exact():
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    assert pcm16_to_float(pcm)[0] == -1.0
    np.testing.assert_array_equal(float_to_pcm16(pcm16_to_float(pcm)), pcm)


def test_params_round_trip_and_refusals():
    params = FeatureParams(n_mfcc=20, deltas=1)
    assert FeatureParams.from_dict(params.to_dict()) == params
    with pytest.raises(FeatureParamsError, match="unknown field"):
        FeatureParams.from_dict({**params.to_dict(), "lifter": 22})
    with pytest.raises(FeatureParamsError, match="window 'hamming'"):
        FeatureParams(window="hamming")
    with pytest.raises(FeatureParamsError, match="feature version"):
        FeatureParams(version=99)
