"""`listen` (from a file, and the stream classifier under it) with the real shipped model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from edge.cli import app
from edge.resample import resample
from edge.runtime import DEFAULT_MODEL, EdgeModel
from edge.settings import ListenSettings
from edge.stream import SILENCE, StreamClassifier
from tests.support.checks import assert_same_decision, assert_same_windows, json_lines
from tests.support.data import ANGRY

runner = CliRunner()


@pytest.mark.parametrize("listen_trim, classify_trim", [("--trim-windows", "window"), ("--no-trim-windows", "none")])
def test_listen_source_matches_classify_window_by_window(listen_trim: str, classify_trim: str):
    """--source runs the microphone path; its windows equal classify's windows of the same (untrimmed)
    audio, each window cut to its loud span (the default) or not."""
    listened = runner.invoke(app, ["listen", "--json", "--source", str(ANGRY), "--silence-db", "-100", listen_trim])
    assert listened.exit_code == 0, listened.output
    windows = json_lines(listened.stdout)
    classified = runner.invoke(app, ["classify", "--json", "--windows", "--trim", classify_trim, str(ANGRY)])
    assert len(windows) >= 3
    assert_same_windows(windows, json_lines(classified.stdout)[0]["windows"])


@pytest.mark.parametrize("mic_rate", [44100, 48000])
def test_stream_classifier_at_other_mic_rates_matches_16k(mic_rate: int):
    """A 44.1 / 48 kHz microphone is resampled on the fly: the same decisions as at 16 kHz."""
    model = EdgeModel(DEFAULT_MODEL)
    signal, rate = soundfile.read(ANGRY, dtype="int16")
    other = (resample(signal / 32768.0, rate, mic_rate) * 32768).round().astype(np.int16)
    results = {}
    for name, pcm, pcm_rate in (("16k", signal, rate), ("other", other, mic_rate)):
        classifier = StreamClassifier(model, pcm_rate, ListenSettings(silence_db=-100))
        chunk = int(pcm_rate * 0.064)
        results[name] = [p for start in range(0, pcm.size, chunk) for p in classifier.push(pcm[start:start + chunk])]
    assert len(results["16k"]) >= 3
    assert [p.start for p in results["16k"]] == [p.start for p in results["other"]]
    for a, b in zip(results["16k"], results["other"]):
        assert_same_decision(b.window_label, b.probabilities, a.window_label, a.probabilities, 0.02)


def test_silence_is_reported_as_silence_not_an_emotion():
    model = EdgeModel(DEFAULT_MODEL)
    classifier = StreamClassifier(model, 16000)
    quiet_room = (np.random.default_rng(0).standard_normal(16000 * 4) * 30).astype(np.int16)  # about -61 dBFS
    predictions = classifier.push(quiet_room)
    assert predictions and all(p.label == SILENCE for p in predictions)
    assert classifier.stats.labels[SILENCE] == len(predictions)


def test_listen_save_dir_keeps_each_window_with_its_prediction(tmp_path: Path):
    result = runner.invoke(app, ["listen", "--source", str(ANGRY), "--save-dir", str(tmp_path / "kept"),
                                 "--silence-db", "-100"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "kept" / "predictions.jsonl").read_text().splitlines()]
    assert records
    for record in records:
        audio, rate = soundfile.read(tmp_path / "kept" / record["file"], dtype="int16")
        heard = (198 - 1) * 160 + 400  # the samples a window's 198 frames cover (its last 80 of 32000 are unused)
        assert rate == 16000 and audio.size == heard
        original, _ = soundfile.read(ANGRY, dtype="int16", start=int(round(record["start"] * 16000)), frames=heard)
        assert np.array_equal(audio, original)


def test_listen_bad_inputs_exit_cleanly(tmp_path: Path):
    missing = runner.invoke(app, ["listen", "--source", str(tmp_path / "nope.wav")])
    assert missing.exit_code == 1 and "error:" in missing.stderr and "Traceback" not in missing.output
    bad_hop = runner.invoke(app, ["listen", "--source", str(ANGRY), "--hop", "5"])
    assert bad_hop.exit_code == 2 and "hop must be between" in bad_hop.stderr
    no_model = runner.invoke(app, ["classify", "--model", str(tmp_path / "none.tflite"), str(ANGRY)])
    assert no_model.exit_code == 1 and "model not found" in no_model.stderr


def test_device_choice_by_index_or_name_and_rate_fallback():
    from edge.sources import AudioSourceError, InputDevice, choose_rate, find_device

    usb = InputDevice(2, "USB PnP Sound Device: Audio (hw:1,0)", "ALSA", 1, 48000, (44100, 48000))
    pulse = InputDevice(5, "pulse", "ALSA", 32, 44100, (8000, 16000, 44100, 48000))
    devices = [usb, pulse]
    assert find_device(devices, 5, None) is pulse
    assert find_device(devices, 5, "2") is usb and find_device(devices, 5, "usb pnp") is usb
    with pytest.raises(AudioSourceError, match="matches no input device"):
        find_device(devices, 5, "bluetooth")
    with pytest.raises(AudioSourceError, match="matches several"):
        find_device(devices + [InputDevice(7, "USB headset", "ALSA", 1, 16000, (16000,))], 5, "usb")
    assert choose_rate(pulse, 16000, None) == 16000  # the model's rate when the device has it
    assert choose_rate(usb, 16000, None) == 48000  # else the device's own, resampled on the fly
    with pytest.raises(AudioSourceError, match="does not record at 22050"):
        choose_rate(usb, 16000, 22050)


def test_a_full_queue_drops_and_counts_instead_of_raising():
    from edge.sources import ChunkQueue

    chunks = ChunkQueue(16000)
    for _ in range(chunks.queue.maxsize + 7):
        chunks.offer(b"\0\0" * chunks.chunk_samples)
    assert chunks.dropped == 7 and chunks.queue.full()
    assert chunks.read(0.01) is not None


def test_terminal_line_shows_label_confidence_bar_and_level():
    import io

    from edge.listen import Printer, terminal_line
    from edge.stream import WindowPrediction

    speech = WindowPrediction(12.5, 10.5, 12.5, "angry", 0.5, -21.0, "angry", {"angry": 0.5})
    line = terminal_line(speech)
    assert line.startswith("   12.5 s  angry") and "██████████··········" in line and "0.50" in line
    assert line.endswith("-21 dB") and "level ██████····" in line
    quiet = terminal_line(WindowPrediction(3.0, 1.0, 3.0, "silence", 0.0, -70.0))
    assert "silence" in quiet and "0.00" not in quiet and "level ··········" in quiet
    piped = io.StringIO()
    Printer(json_lines=False, stream=piped)(speech)
    assert piped.getvalue() == line + "\n"  # not a terminal: one line per window, no carriage returns
