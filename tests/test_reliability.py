"""Reliability beyond single files: option ranges, untrusted models, --save-dir and a full disk, stopping
`listen`, streaming long files, and the voice-activity gate on speech and non-speech."""
from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from edge.cli import app
from tests.support.data import ANGRY, PROJECT, write_audio
from tests.support.nonspeech import nonspeech_clips

EDGE_SER = [sys.executable, "-c", "from edge.cli import main; main()"]
runner = CliRunner()


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


BAD_OPTIONS = [
    ["classify", str(ANGRY), "--hop", "nan"],
    ["classify", str(ANGRY), "--hop", "inf"],
    ["classify", str(ANGRY), "--hop", "-1"],
    ["classify", str(ANGRY), "--hop", "0"],
    ["classify", str(ANGRY), "--threads", "0"],
    ["classify", str(ANGRY), "--vad", "magic"],
    ["listen", "--source", str(ANGRY), "--hop", "nan"],
    ["listen", "--source", str(ANGRY), "--duration", "-5"],
    ["listen", "--source", str(ANGRY), "--duration", "0"],
    ["listen", "--source", str(ANGRY), "--duration", "nan"],
    ["listen", "--source", str(ANGRY), "--threshold", "2"],
    ["listen", "--source", str(ANGRY), "--threshold", "nan"],
    ["listen", "--source", str(ANGRY), "--silence-db", "inf"],
    ["listen", "--source", str(ANGRY), "--silence-db", "10"],
    ["listen", "--source", str(ANGRY), "--stall-timeout", "0"],
    ["listen", "--source", str(ANGRY), "--smoothing", "0"],
    ["listen", "--rate", "2147483647"],
    ["train", "x", "--learning-rate", "nan"],
    ["train", "x", "--learning-rate", "0"],
    ["train", "x", "--dropout", "1.5"],
    ["train", "x", "--room-probability", "inf"],
    ["train", "x", "--epochs", "-1"],
    ["train", "x", "--deltas", "3"],
    ["quantize", "--max-drift", "nan"],
    ["quantize", "--max-drift", "-1"],
    ["bench", "--repeats", "1"],
]


@pytest.mark.parametrize("args", BAD_OPTIONS, ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_out_of_range_and_non_finite_options_are_usage_errors(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (ValueError, TypeError))
    assert "Invalid value" in result.output or "error:" in result.output


@pytest.mark.host
def test_a_bundle_whose_labels_do_not_match_the_network_is_refused(tmp_path: Path):
    pytest.importorskip("tensorflow")
    from convert.tflite import finish_flatbuffer
    from edge.bundle_json import read_bundle
    from edge.runtime import DEFAULT_MODEL

    bundle = read_bundle(DEFAULT_MODEL).to_dict()
    bundle["labels"] = bundle["labels"][:-1]
    model = tmp_path / "lying.tflite"
    model.write_bytes(finish_flatbuffer(DEFAULT_MODEL.read_bytes(), bundle))
    result = runner.invoke(app, ["classify", "--model", str(model), str(ANGRY)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "gives 8 outputs but its bundle names 7 labels" in result.stderr


@pytest.mark.parametrize("where", ["a file", "inside a file"])
def test_save_dir_that_cannot_be_a_folder_is_refused_before_listening(tmp_path: Path, where: str):
    existing = tmp_path / "taken"
    existing.write_text("mine")
    target = existing if where == "a file" else existing / "sub"
    result = runner.invoke(app, ["listen", "--source", str(ANGRY), "--save-dir", str(target)])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert "save-dir" in result.stderr and "listening:" not in result.stderr
    assert existing.read_text() == "mine"


def _limit_file_size(limit: int):
    """Files this process writes may not grow past `limit` bytes: writes beyond fail with EFBIG (Python
    ignores SIGXFSZ), the way they fail with ENOSPC on a full disk."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_while_saving_is_reported_and_listening_goes_on(tmp_path: Path):
    long = write_audio(tmp_path / "long.wav", np.tile(soundfile.read(ANGRY, dtype="float32")[0], 4))
    kept = tmp_path / "kept"
    result = subprocess.run(EDGE_SER + ["listen", "--source", str(long), "--save-dir", str(kept), "--json", "--vad", "none",
                                        "--silence-db", "-100"], capture_output=True, text=True, cwd=PROJECT,
                            timeout=120, preexec_fn=_limit_file_size(40_000))  # a window's WAV is 64 KB
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot save windows" in result.stderr and "listening goes on without saving" in result.stderr
    windows = json_lines(result.stdout)
    assert len(windows) > 5  # it went on classifying after the disk filled
    assert "listened to" in result.stderr  # and ended with its summary
    assert not list(kept.glob("*.part")) and not list(kept.glob(".*.part"))  # no half-written file
    assert not list(kept.glob("*.wav"))  # the one that did not fit was removed


def test_sigterm_ends_listen_with_its_summary(tmp_path: Path):
    long = write_audio(tmp_path / "long.wav", np.tile(soundfile.read(ANGRY, dtype="float32")[0], 10))
    process = subprocess.Popen(EDGE_SER + ["listen", "--source", str(long), "--realtime", "--json"], cwd=PROJECT,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().startswith("{")  # it is listening
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped by SIGTERM" in err and "listened to" in err and "Traceback" not in err


def test_a_file_longer_than_a_block_streams_to_the_same_answer(tmp_path: Path):
    """40 s is more than one 16 s decoding block: blocks, window cutting and the VAD across block
    boundaries give what the whole clip in memory gives."""
    from edge.audio import BLOCK_SAMPLES, read_audio
    from edge.classify import classify_file, classify_signal
    from edge.runtime import DEFAULT_MODEL, EdgeModel
    from edge.settings import ClassifySettings
    from edge.vad import load_detector

    speech = soundfile.read(ANGRY, dtype="float32")[0]
    path = write_audio(tmp_path / "long.wav", np.tile(speech, -(-40 * 16000 // speech.size))[: 40 * 16000], 44100)
    assert soundfile.info(str(path)).frames > BLOCK_SAMPLES
    model, detector = EdgeModel(DEFAULT_MODEL), load_detector()
    for trim in ("clip", "window", "none"):
        streamed = classify_file(model, path, ClassifySettings(trim=trim, keep_windows=True), detector)
        whole = classify_signal(model, read_audio(path, 16000), str(path), ClassifySettings(trim=trim, keep_windows=True),
                                detector)
        assert [w.start for w in streamed.windows] == [w.start for w in whole.windows]
        assert [w.label for w in streamed.windows] == [w.label for w in whole.windows]
        assert streamed.label == whole.label
        assert streamed.confidence == pytest.approx(whole.confidence, abs=1e-4)


def test_window_times_are_times_in_the_file(tmp_path: Path):
    """With --trim clip the windows start where the speech starts in the file, not at 0 of the cut clip."""
    speech = soundfile.read(ANGRY, dtype="float32")[0]
    path = write_audio(tmp_path / "late.wav", np.concatenate((np.zeros(3 * 16000, np.float32), speech)))
    result = runner.invoke(app, ["classify", "--json", "--windows", str(path)])
    first = json_lines(result.stdout)[0]["windows"][0]
    assert first["start"] >= 3.0


# ------------------------------------------------------------------ speech or not

def test_generated_non_speech_gets_no_emotion(tmp_path: Path):
    clips = nonspeech_clips()
    paths = [write_audio(tmp_path / f"{i:02d}.wav", signal) for i, (_, signal) in enumerate(clips)]
    result = runner.invoke(app, ["classify", "--json", "--windows", *map(str, paths)])
    assert result.exit_code == 0, result.output
    files = json_lines(result.stdout)
    windows = [w for f in files for w in f["windows"]]
    no_speech_files = sum(f["label"] == "no speech" for f in files) / len(files)
    no_speech_windows = sum(w["label"] == "no speech" for w in windows) / len(windows)
    assert no_speech_files >= 0.9 and no_speech_windows >= 0.9, [f["label"] for f in files]
    assert all(f["probabilities"] == {} and f["confidence"] == 0 for f in files if f["label"] == "no speech")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make sysdeps)")
def test_synthetic_speech_still_gets_an_emotion(tmp_path: Path):
    sentences = ["I can't believe you did that again.", "The weather is lovely today, let's go outside.",
                 "Please leave me alone, I am very tired.", "What a wonderful surprise to see you here!"]
    paths = []
    for i, sentence in enumerate(sentences):
        paths.append(tmp_path / f"say{i}.wav")
        subprocess.run(["espeak-ng", "-w", str(paths[-1]), sentence], check=True, timeout=60)
    result = runner.invoke(app, ["classify", "--json", *map(str, paths)])
    labels = [f["label"] for f in json_lines(result.stdout)]
    assert len(labels) == 4 and "no speech" not in labels


def test_listen_says_no_speech_for_noise_and_keeps_speech(tmp_path: Path):
    from edge.runtime import DEFAULT_MODEL, EdgeModel
    from edge.stream import StreamClassifier
    from edge.vad import NO_SPEECH, load_detector

    noise = dict(nonspeech_clips())["pink noise -20 dBFS"]
    speech = soundfile.read(ANGRY, dtype="int16")[0]
    classifier = StreamClassifier(EdgeModel(DEFAULT_MODEL), 16000, detector=load_detector())
    noisy = classifier.push((noise * 32767).astype(np.int16))
    assert noisy and {p.label for p in noisy} == {NO_SPEECH}
    spoken = classifier.push(np.tile(speech, 2))
    assert any(p.window_label for p in spoken)  # once the voice fills the window, the model is asked
    assert classifier.stats.labels[NO_SPEECH] == len(noisy) + sum(p.label == NO_SPEECH for p in spoken)


def test_vad_none_classifies_every_window(tmp_path: Path):
    path = write_audio(tmp_path / "noise.wav", nonspeech_clips()[1][1])
    result = runner.invoke(app, ["classify", "--json", "--vad", "none", str(path)])
    assert json_lines(result.stdout)[0]["label"] != "no speech"


# ------------------------------------------------------------------ memory on long recordings

@pytest.mark.slow
def test_an_hour_of_audio_needs_no_more_memory_than_ten_minutes(tmp_path: Path):
    sys.path.insert(0, str(PROJECT / "benchmarks"))
    from long_audio import commands, peak_rss_mb, write_long_recording

    peaks: dict[str, list[float]] = {}
    for minutes in (10, 60):
        path = write_long_recording(tmp_path / f"{minutes}.wav", minutes)
        for name, command in commands(path).items():
            rss, _, code = peak_rss_mb(command)
            assert code == 0, name
            peaks.setdefault(name, []).append(rss)
        path.unlink()
    for name, (ten, sixty) in peaks.items():
        assert sixty <= 150, f"{name}: {sixty:.0f} MB for an hour"
        assert abs(sixty - ten) <= 0.1 * ten, f"{name}: {ten:.0f} MB for 10 min, {sixty:.0f} MB for 60"


@pytest.mark.slow
@pytest.mark.mic
def test_five_minute_soak_on_the_virtual_microphone():
    """`make soak` for 5 minutes (CI's slow tier): no RSS growth after the warm-up, no crash, a clean stop."""
    from tests.support.virtual_mic import pulseaudio_available

    if not pulseaudio_available() or not (PROJECT / ".venv-edge/bin/python").exists():
        pytest.skip("needs PulseAudio and the edge install (make test sets both up)")
    sys.path.insert(0, str(PROJECT / "benchmarks"))
    from soak import soak

    report = soak(str(PROJECT / ".venv-edge/bin/python"), minutes=5)
    assert not report.problems, report
    assert report.windows > 500 and report.labels.get("no speech", 0) > 0


@pytest.mark.parametrize("length", [1, 399, 8000, 32000, 32001, 47999, 100000])
def test_window_cutter_and_loud_span_equal_their_whole_clip_forms_in_any_chunks(length: int):
    from edge.windowing import LoudSpan, WindowCutter, clip_windows, trim_silence, window_starts

    rng = np.random.default_rng(length)
    signal = (rng.standard_normal(length) * np.linspace(0.01, 1, length)).astype(np.float32)
    signal[: length // 4] *= 1e-3  # a quiet start to trim
    for chunk in (1000, 8000, 70000):
        cutter, loud = WindowCutter(32000, 8000), LoudSpan()
        windows = []
        for start in range(0, length, chunk):
            windows += cutter.push(signal[start: start + chunk])
            loud.push(signal[start: start + chunk])
        windows += cutter.finish()
        expected = clip_windows(signal, 32000, 8000)
        assert [s for s, _ in windows] == window_starts(max(length, 32000), 32000, 8000)
        assert all(np.array_equal(w, e) for (_, w), e in zip(windows, expected)) and len(windows) == len(expected)
        first, last = loud.span()
        assert np.array_equal(trim_silence(signal), signal[first:last])


# ------------------------------------------------------------------ output a newcomer reads
VERBS = ["train", "crosscorpus", "calibrate", "explore", "download", "quantize", "compare", "info", "classify",
         "listen", "devices", "bench"]


def test_piped_help_is_never_cut():
    for verb in VERBS:
        result = subprocess.run(EDGE_SER + [verb, "--help"], capture_output=True, text=True, cwd=PROJECT, timeout=60)
        assert result.returncode == 0 and "Usage" in result.stdout, verb
        assert "…" not in result.stdout, f"{verb} --help is cut when piped"


def test_a_host_verb_prints_no_tensorflow_start_up_notices():
    result = subprocess.run(EDGE_SER + ["train", "/nonexistent-corpus"], capture_output=True, text=True,
                            cwd=PROJECT, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: /nonexistent-corpus does not exist"]
