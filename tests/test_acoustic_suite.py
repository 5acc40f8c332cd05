"""The acoustic test suite: each condition does what it says on generated signals, the same every time for a
clip, and the runner scores a real run and the shipped TFLite model on held-out speakers."""
import shutil

import numpy as np
import pytest

from benchmarks.acoustic_suite import SuiteRequest, markdown, run_suite
from tests.support.data import PROJECT
from train.acoustic_suite import (
    CONDITIONS,
    SAMPLE_RATE,
    Babble,
    CheapMicrophone,
    Clipping,
    Fan,
    Hum,
    ImageSourceRoom,
    LevelRide,
    Mp3,
    Music,
    SuiteError,
    Telephone,
    conditions_named,
    degrade,
    mu_law_decode,
    mu_law_encode,
)

pytestmark = pytest.mark.host

SMALL_ROOM = ImageSourceRoom(name="test-room", size_m=((4.0, 5.0), (3.0, 4.0), (2.5, 2.8)), distance_m=(1.0, 2.0),
                             rooms=2, max_order=4)


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)).astype(np.float32)


def snr_of(heard: np.ndarray, clean: np.ndarray) -> float:
    """The SNR of `heard` = a * clean + noise, with a found by projection (the noise is uncorrelated with the tone)."""
    a = float(np.dot(heard, clean) / np.dot(clean, clean))
    return float(10 * np.log10(np.sum((a * clean) ** 2) / np.sum((heard - a * clean) ** 2)))


def test_the_conditions_have_distinct_names_and_say_what_they_are():
    names = [c.name for c in CONDITIONS]
    assert len(set(names)) == len(names) and all(c.describe() for c in CONDITIONS)
    assert any(not c.trained_family for c in CONDITIONS)  # families no training run uses are the point
    assert [c.name for c in conditions_named(("mp3", "hum"))] == ["hum", "mp3"]
    with pytest.raises(SuiteError, match="unknown condition"):
        conditions_named(("concert",))


@pytest.mark.parametrize("condition", [SMALL_ROOM, Hum(), Fan(), Music(), CheapMicrophone(), Telephone(), Clipping(),
                                       LevelRide()], ids=lambda c: c.name)
def test_a_condition_keeps_the_length_and_is_the_same_every_time_for_a_clip(condition):
    signal = tone(440.0, 1.5)
    heard = degrade(condition, signal, "a.wav")
    assert heard.shape == signal.shape and heard.dtype == np.float32 and np.isfinite(heard).all()
    assert not np.array_equal(heard, signal)
    assert np.array_equal(heard, degrade(condition, signal, "a.wav"))


@pytest.mark.parametrize("condition", [SMALL_ROOM, Hum(), Fan(), Music(), Clipping(), LevelRide()], ids=lambda c: c.name)
def test_another_clip_draws_another_case(condition):
    signal = tone(440.0, 1.5)
    assert not np.array_equal(degrade(condition, signal, "a.wav"), degrade(condition, signal, "b.wav"))


@pytest.mark.parametrize("noise", [Hum(snr_db=(5.0, 5.0)), Fan(snr_db=(12.0, 12.0)), Music(snr_db=(0.0, 0.0))],
                         ids=lambda c: c.name)
def test_noise_is_added_at_the_drawn_snr(noise):
    clean = tone(1234.0, 2.0)  # not a multiple of 50 or 60 Hz: uncorrelated with the hum
    assert snr_of(degrade(noise, clean, "a.wav").astype(np.float64), clean) == pytest.approx(noise.snr_db[0], abs=0.5)


def test_hum_lies_on_the_mains_harmonics():
    noise = Hum().noise(SAMPLE_RATE * 2, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    frequencies = np.fft.rfftfreq(noise.size, 1 / SAMPLE_RATE)
    on_harmonics = np.zeros(frequencies.size, dtype=bool)
    for mains in (50, 60):
        on_harmonics |= np.minimum(frequencies % mains, mains - frequencies % mains) < 1
    assert spectrum[on_harmonics].sum() > 0.99 * spectrum.sum()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_babble_is_synthetic_speech_at_the_drawn_snr():
    clean = tone(1234.0, 2.0)
    babble = Babble(snr_db=(6.0, 6.0))
    heard = degrade(babble, clean, "a.wav")
    assert heard.shape == clean.shape and np.array_equal(heard, degrade(babble, clean, "a.wav"))
    assert snr_of(heard.astype(np.float64), clean) == pytest.approx(6.0, abs=1.0)


def band_db(signal: np.ndarray, hz: float) -> float:
    """The power of `signal` within 5 Hz of `hz`, in dB."""
    spectrum = np.abs(np.fft.rfft(np.asarray(signal, dtype=np.float64))) ** 2
    return float(10 * np.log10(spectrum[np.abs(np.fft.rfftfreq(signal.size, 1 / SAMPLE_RATE) - hz) < 5].sum()))


def test_the_cheap_microphone_lifts_the_presence_band_and_cuts_the_bass():
    heard = degrade(CheapMicrophone(), tone(80.0) + tone(1000.0) + tone(4000.0), "a.wav")
    assert band_db(heard, 4000.0) - band_db(heard, 1000.0) == pytest.approx(6.0, abs=1.0)
    assert band_db(heard, 80.0) - band_db(heard, 1000.0) < -15


def test_the_telephone_keeps_its_band_only():
    telephone = Telephone()

    def kept_db(hz: float) -> float:
        heard = degrade(telephone, tone(hz) + tone(1000.0), "a.wav")
        return band_db(heard, hz) - band_db(heard, 1000.0)

    assert kept_db(2000.0) > -3 and kept_db(100.0) < -30 and kept_db(5000.0) < -30


def test_mu_law_codes_are_bytes_and_round_trip_within_a_step():
    signal = np.linspace(-1, 1, 1001)
    codes = mu_law_encode(signal)
    assert codes.dtype == np.uint8 and codes.min() == 0 and codes.max() == 255
    decoded = mu_law_decode(codes)
    assert np.max(np.abs(decoded - signal)) < 0.025  # half the largest step (about 0.044, at full scale)
    assert np.max(np.abs(decoded - signal)[np.abs(signal) < 0.01]) < 0.001  # fine steps near zero


def test_clipping_cuts_at_the_peak_and_the_level_ride_swings_the_level():
    signal = tone(440.0, 2.0)
    clipped = degrade(Clipping(drive_db=(12.0, 12.0)), signal, "a.wav")
    assert np.max(np.abs(clipped)) == pytest.approx(np.max(np.abs(signal)), rel=1e-6)
    assert np.mean(np.isclose(np.abs(clipped), np.max(np.abs(clipped)))) > 0.5
    ridden = degrade(LevelRide(depth_db=(10.0, 10.0), rate_hz=(1.0, 1.0)), signal, "a.wav")
    envelope = [np.max(np.abs(ridden[i:i + 800])) for i in range(0, ridden.size - 800, 800)]
    assert 20 * np.log10(max(envelope) / min(envelope)) == pytest.approx(20.0, abs=1.5)


def test_mp3_is_lossy_but_keeps_the_tone():
    import soundfile

    if "MP3" not in soundfile.available_formats():
        pytest.skip("libsndfile without MP3")
    signal = tone(440.0, 2.0) + 0.05 * np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE).astype(np.float32)
    heard = degrade(Mp3(), signal, "a.wav")
    assert heard.shape == signal.shape and not np.array_equal(heard, signal)
    spectrum = np.abs(np.fft.rfft(heard.astype(np.float64))) ** 2
    frequencies = np.fft.rfftfreq(heard.size, 1 / SAMPLE_RATE)
    assert spectrum[np.abs(frequencies - 440) < 5].sum() > 0.5 * spectrum.sum()


def test_the_room_reverberates_a_click():
    click = np.zeros(SAMPLE_RATE, dtype=np.float32)
    click[100] = 1.0
    heard = degrade(SMALL_ROOM, click, "a.wav")
    assert np.count_nonzero(np.abs(heard) > 1e-3) > 100  # reflections, not one sample


def test_the_suite_scores_a_run_and_the_shipped_model_on_the_runs_held_out_speakers(tiny_run, ravdess_like):
    result, runs = tiny_run
    assert result.exit_code == 0, result.output
    shipped = PROJECT / "edge" / "models" / "default.tflite"
    request = SuiteRequest(models=(runs / "tiny", shipped), data=(ravdess_like,), clips_per_corpus=0,
                           conditions=("hum",))
    report = run_suite(request)
    assert report["tests"] == {"ravdess": {"clips": 8, "speakers": ["ravdess:05"]}}
    tiny, default = report["rows"]
    assert tiny["heard"] == {"ravdess": False} and default["heard"] == {"ravdess": True}
    assert tiny["kind"].startswith("float") and default["kind"].startswith("TFLite")
    for row in report["rows"]:
        clean, hum = row["clean"]["ravdess"], row["conditions"]["hum"]
        assert 0 <= clean <= 1 and 0 <= hum["ua"]["ravdess"] <= 1 and set(row["conditions"]) == {"hum"}
        assert hum["ratio"]["ravdess"] == (pytest.approx(hum["ua"]["ravdess"] / clean) if clean else None)
    text = "\n".join(markdown(report, "python -m benchmarks.acoustic_suite"))
    assert "HEARD ravdess" in text and "| hum \u2020 |" in text and "mains hum" in text


def test_a_model_that_is_neither_a_run_nor_tflite_is_one_error_line(tmp_path, capsys):
    from benchmarks.acoustic_suite import main

    (tmp_path / "notes.txt").write_text("not a model")
    assert main([str(tmp_path / "notes.txt"), "--speakers", "ravdess:05", "--data", str(tmp_path)]) == 1
    expected = f"error: {tmp_path / 'notes.txt'}: neither a run folder nor a .tflite model"
    assert capsys.readouterr().err.strip().splitlines() == [expected]
