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
    pcen,
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


def test_pcen_is_librosa_pcen_started_in_the_first_frames_steady_state():
    import librosa
    import scipy.signal

    params = FeatureParams(pcen_time_constant=0.4)
    log_mel = frame_features(speech_like(seconds=2.0), params)
    energy = np.exp(log_mel.astype(np.float64)).T
    b = librosa_pcen_b(time_constant_frames=0.4 * 16000 / 160)
    start = scipy.signal.lfilter_zi([b], [1, b - 1])[None, :] * energy[:, :1]  # as if frame 0 had always been there
    reference = librosa.pcen(energy, sr=16000, hop_length=160, time_constant=0.4, gain=0.98, bias=2, power=0.5,
                             eps=1e-6, zi=start).T
    np.testing.assert_allclose(pcen(log_mel, params), reference, atol=1e-5)


def librosa_pcen_b(time_constant_frames: float) -> float:
    """librosa.pcen's smoothing coefficient for a time constant in frames (its own formula)."""
    return (np.sqrt(1 + 4 * time_constant_frames**2) - 1) / (2 * time_constant_frames**2)


def test_pcen_gain_settles_after_a_level_step_that_the_log_mel_window_keeps():
    noise = np.random.default_rng(2).standard_normal(32000).astype(np.float32) * 0.01
    stepped = noise * np.where(np.arange(noise.size) < 12000, 1.0, 4.0).astype(np.float32)  # +12 dB at 0.75 s

    def before_and_long_after(params: FeatureParams) -> tuple[float, float]:
        matrix = features_for_window(stepped, params)  # 198 frames: the step at frame 75
        return float(matrix[20:60].mean()), float(matrix[-40:].mean())

    log_before, log_after = before_and_long_after(FeatureParams())
    pcen_before, pcen_after = before_and_long_after(FeatureParams(pcen_time_constant=0.4))
    assert log_after - log_before > 1.5  # per-window normalisation keeps the step: two levels in one window
    assert abs(pcen_after - pcen_before) < 0.2  # PCEN's gain has followed it a second later


def test_pcen_is_off_by_default_only_for_log_mel_and_left_out_of_old_bundles():
    assert FeatureParams().pcen_time_constant == 0
    assert "pcen_time_constant" not in FeatureParams().to_dict()
    assert FeatureParams(pcen_time_constant=0.4).to_dict()["pcen_time_constant"] == 0.4
    with pytest.raises(FeatureParamsError, match="pcen_time_constant replaces the log of mel bands: it needs n_mfcc 0"):
        FeatureParams(n_mfcc=13, pcen_time_constant=0.4)
    with pytest.raises(FeatureParamsError, match="pcen_time_constant must be 0"):
        FeatureParams(pcen_time_constant=-1)
    empty = np.zeros((0, 40), dtype=np.float32)
    assert window_features(empty, FeatureParams(pcen_time_constant=0.4, normalisation="none")).shape == (0, 40)


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
