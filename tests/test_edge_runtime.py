"""The edge verbs with the real shipped model and real files: classify, listen --source, bench, delegates."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import PROJECT, write_audio
from typer.testing import CliRunner

from edge.cli import app
from edge.corpora import parse_ravdess
from edge.resample import resample
from edge.runtime import DEFAULT_MODEL, EdgeModel
from edge.settings import ListenSettings
from edge.stream import SILENCE, StreamClassifier

DEMO = sorted((PROJECT / "assets" / "demo").glob("*.flac"))
ANGRY = PROJECT / "assets" / "demo" / "03-01-05-02-01-01-17.flac"
runner = CliRunner()


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_default_model_is_shipped_and_self_describing():
    model = EdgeModel(DEFAULT_MODEL)
    assert len(model.labels) == 8 and "angry" in model.labels
    assert model.bundle.corpora, "the bundle credits its training corpora"
    assert len(DEMO) == 8 and {parse_ravdess(p).label for p in DEMO} == set(model.labels)


def test_classify_json_gives_label_confidence_probabilities_per_file():
    result = runner.invoke(app, ["classify", "--json", *map(str, DEMO[:3])])
    assert result.exit_code == 0, result.output
    objects = json_lines(result.stdout)
    assert [o["path"] for o in objects] == [str(p) for p in DEMO[:3]]
    for o in objects:
        assert set(o) >= {"path", "label", "confidence", "probabilities"}
        assert o["label"] == max(o["probabilities"], key=o["probabilities"].get)
        assert abs(sum(o["probabilities"].values()) - 1) < 1e-3
        assert o["confidence"] == pytest.approx(o["probabilities"][o["label"]], abs=1e-5)


def test_classify_reports_a_bad_file_and_goes_on(tmp_path: Path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not really")
    result = runner.invoke(app, ["classify", "--json", str(bad), str(ANGRY), str(tmp_path / "missing.wav")])
    assert result.exit_code == 1
    objects = json_lines(result.stdout)
    assert [("error" in o) for o in objects] == [True, False, True]
    assert "2 of 3 file(s) could not be classified" in result.stderr


def test_classify_a_folder_recurses_and_an_empty_one_is_an_error(tmp_path: Path):
    folder = runner.invoke(app, ["classify", str(PROJECT / "assets")])
    assert folder.exit_code == 0 and "correct: " in folder.stdout and folder.stdout.count(".flac") == 8
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["classify", str(tmp_path / "empty")])
    assert empty.exit_code == 1 and "no audio files in" in empty.stderr


def test_classify_any_rate_and_channel_count_gives_the_same_label(tmp_path: Path):
    signal, rate = soundfile.read(ANGRY, dtype="float32")
    stereo_44k = write_audio(tmp_path / "angry-44k-stereo.wav", resample(signal, rate, 44100), 44100, channels=2)
    result = runner.invoke(app, ["classify", "--json", str(ANGRY), str(stereo_44k)])
    first, second = json_lines(result.stdout)
    assert first["label"] == second["label"]
    assert abs(first["confidence"] - second["confidence"]) < 0.05


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


def test_window_trim_cuts_a_window_to_its_loud_span_and_repeats_it():
    from edge.features import FeatureParams, frame_features
    from edge.windowing import frame_power, trim_window_frames

    params = FeatureParams()
    rng = np.random.default_rng(0)
    speech = np.sin(np.arange(16000) * 0.2).astype(np.float32) * 0.3
    window = np.concatenate([rng.standard_normal(16000).astype(np.float32) * 1e-4, speech])  # 1 s quiet, 1 s loud
    frames = frame_features(window, params)
    trimmed = trim_window_frames(frames, frame_power(window, 400, 160))
    # Frame i covers samples [160 i, 160 i + 400): frame 98 is the first to reach the loud second.
    loud = frames[98:]
    assert trimmed.shape == frames.shape == (198, 40)
    assert np.array_equal(trimmed[:100], loud) and np.array_equal(trimmed[100:], loud[:98])
    all_loud = frame_features(np.tile(speech, 2), params)
    assert trim_window_frames(all_loud, frame_power(np.tile(speech, 2), 400, 160)) is all_loud


@pytest.mark.parametrize("n_samples", [399, 400, 401, 31920, 56789])
def test_frame_power_equals_the_mean_square_of_each_frame(n_samples: int):
    from edge.windowing import frame_power

    rng = np.random.default_rng(n_samples)
    signal = (rng.standard_normal(n_samples) * rng.uniform(0, 1, n_samples)).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(signal, 400)[::160] if n_samples >= 400 else np.zeros((0, 400))
    expected = np.mean(frames.astype(np.float64) ** 2, axis=1)
    assert frame_power(signal, 400, 160).shape == expected.shape
    assert np.allclose(frame_power(signal, 400, 160), expected, rtol=1e-6, atol=0)  # float32 block sums


def test_classify_refuses_an_unknown_trim_mode():
    result = runner.invoke(app, ["classify", "--trim", "both", str(ANGRY)])
    assert result.exit_code == 2 and "--trim must be one of clip, window, none" in result.stderr


def assert_same_decision(label: str, probabilities: dict, expected_label: str, expected: dict, tolerance: float) -> None:
    """Probabilities within `tolerance`; the same label unless the expected top two are closer than
    that (a near tie may flip by a difference the tolerance allows, nothing more)."""
    difference = max(abs(probabilities[k] - v) for k, v in expected.items())
    assert difference < tolerance, difference
    first, second = sorted(expected.values(), reverse=True)[:2]
    assert label == expected_label or first - second < 2 * tolerance, (label, expected_label, first, second)


def assert_same_windows(listened: list[dict], classified: list[dict], tolerance: float = 2e-3) -> None:
    by_start = {round(w["start"], 3): w for w in classified}
    for window in listened:
        expected = by_start[round(window["start"], 3)]
        assert_same_decision(window["window_label"], window["probabilities"], expected["label"],
                             expected["probabilities"], tolerance)


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


def test_missing_delegate_falls_back_to_cpu_with_one_line(tmp_path: Path):
    missing = tmp_path / "libnot_a_delegate.so"
    result = runner.invoke(app, ["classify", "--delegate", str(missing), str(ANGRY)])
    assert result.exit_code == 0, result.output
    assert "could not be loaded" in result.stderr and "running on CPU (XNNPACK)" in result.stderr
    gpu = runner.invoke(app, ["classify", "--delegate", "gpu", str(ANGRY)])
    assert gpu.exit_code == 0 and "libtensorflowlite_gpu_delegate.so" in gpu.stderr


def test_require_delegate_turns_the_fallback_into_exit_1(tmp_path: Path):
    result = runner.invoke(app, ["classify", "--delegate", "gpu", "--require-delegate", str(ANGRY)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: delegate 'gpu' could not be loaded")


def test_bench_json_reports_features_and_inference_separately():
    result = runner.invoke(app, ["bench", "--json", "--repeats", "5"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    for key in ("features_stream", "features_window", "inference"):
        assert 0 < report[key]["median_ms"] <= report[key]["p95_ms"]
    assert report["real_time_factor"] == pytest.approx(report["per_window_ms"] / 500, rel=1e-2)
    assert report["peak_rss_mib"] > 10 and report["cold_start_ms"] > 0
    assert report["runtime"] == "ai-edge-litert" and report["delegate"] == "CPU (XNNPACK)"


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


@pytest.mark.slow
def test_edge_classify_reproduces_the_converters_record_of_the_shipped_model():
    """The edge path (numpy features + TFLite) on the shipped model's evaluation set (its final fit's
    training utterances: CREMA-D, RAVDESS actors 01-20 and TESS) scores what the converter embedded."""
    pytest.importorskip("tensorflow")
    from conftest import real_corpus

    from edge.classify import classify_file, true_label
    from train.datasets import default_cache_dir, load_corpora

    roots = tuple(real_corpus(name) for name in ("crema-d", "ravdess", "tess"))
    model = EdgeModel(DEFAULT_MODEL)
    conversion = model.bundle.conversion
    assert "training utterances of a final fit" in conversion.evaluated_on
    assert "speaker-independent run(s)" in model.bundle.metrics_source
    files = [u.path for u in load_corpora(roots, "auto", 0, 16000, default_cache_dir()).utterances]
    assert f"{len(files)} training utterances" in conversion.evaluated_on
    correct = sum(classify_file(model, p).label == true_label(p) for p in files)
    assert abs(correct / len(files) - conversion.accuracy) <= 1.5 / len(files), (correct, conversion)


def test_tf_lite_runtime_gives_the_same_answer_as_litert():
    pytest.importorskip("tensorflow")
    answers = [json_lines(runner.invoke(app, ["classify", "--json", "--runtime", name, str(ANGRY)]).stdout)[0]
               for name in ("ai-edge-litert", "tensorflow")]
    assert answers[0]["label"] == answers[1]["label"]
    assert abs(answers[0]["confidence"] - answers[1]["confidence"]) < 1e-4
    unknown = runner.invoke(app, ["classify", "--runtime", "onnx", str(ANGRY)])
    assert unknown.exit_code == 1 and "unknown runtime 'onnx'" in unknown.stderr


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


NULL_DELEGATE_C = r"""
/* A real TFLite external delegate that claims no node: Prepare() returns kTfLiteOk and replaces nothing. */
#include <stdint.h>
#include <stdlib.h>
typedef struct NullDelegate {
  void* data_;
  int (*Prepare)(void* context, struct NullDelegate* delegate);
  void* copy_from_buffer_handle;
  void* copy_to_buffer_handle;
  void* free_buffer_handle;
  int64_t flags;
  void* opaque_delegate_builder;
  char reserved[256]; /* zeroed room for fields newer runtimes may add */
} NullDelegate;
static int prepare(void* context, NullDelegate* delegate) { return 0; }
NullDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report)(const char*)) {
  NullDelegate* d = calloc(1, sizeof(NullDelegate));
  d->Prepare = prepare;
  return d;
}
void tflite_plugin_destroy_delegate(NullDelegate* d) { free(d); }
"""


def compile_library(tmp_path: Path, name: str, source: str) -> Path:
    import shutil
    import subprocess

    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        pytest.skip("no C compiler to build a test delegate")
    (tmp_path / f"{name}.c").write_text(source)
    library = tmp_path / f"lib{name}.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(tmp_path / f"{name}.c")], check=True)
    return library


def test_a_real_delegate_that_claims_nothing_is_reported_and_falls_back(tmp_path: Path):
    library = compile_library(tmp_path, "null_delegate", NULL_DELEGATE_C)
    result = runner.invoke(app, ["classify", "--json", "--delegate", str(library), str(ANGRY)])
    assert result.exit_code == 0, result.output
    assert "loaded but runs none of this model's ops" in result.stderr and "running on CPU (XNNPACK)" in result.stderr
    reference = json_lines(runner.invoke(app, ["classify", "--json", str(ANGRY)]).stdout)[0]
    assert json_lines(result.stdout)[0]["probabilities"] == reference["probabilities"]
    required = runner.invoke(app, ["classify", "--delegate", str(library), "--require-delegate", str(ANGRY)])
    assert required.exit_code == 1 and "--require-delegate forbids" in required.stderr


def test_a_library_that_is_not_a_delegate_falls_back_without_a_traceback(tmp_path: Path):
    library = compile_library(tmp_path, "not_a_delegate", "int not_a_delegate(void) { return 0; }\n")
    result = runner.invoke(app, ["classify", "--delegate", str(library), str(ANGRY)])
    assert result.exit_code == 0, result.output
    assert "is not a TFLite external delegate" in result.stderr and "Traceback" not in result.output
