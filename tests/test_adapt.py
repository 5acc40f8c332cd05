"""`edge-ser adapt`: labelled clips -> an adapted model every verb takes; the layer it fits; bad input.

Real components throughout: espeak-ng speech written as files (a folder per label and a CSV manifest),
the shipped model in the real TFLite interpreter, the CLI as a user runs it."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from edge.adaptation import (
    LOST_BASE_STRENGTH,
    LOST_BASE_UA,
    ONE_CLIP_STRENGTH,
    STRENGTHS,
    AdaptedHead,
    base_clip_accuracy,
    choose_strength,
    fit_head,
    gradient,
    how_chosen,
    softmax,
    start_head,
)
from edge.answers import Answers
from edge.cli import app
from edge.runtime import DEFAULT_MODEL, EdgeModel
from tests.support.checks import json_lines
from tests.support.data import PROJECT, write_audio

runner = CliRunner()
SENTENCES = ["I can't believe you did that again.", "The weather is lovely today.", "Please leave me alone now.",
             "What a day this has been."]
# The voice of each label: espeak-ng pitch (-p) and words per minute (-s); a speaker's way of sounding so.
VOICES = {"neutral": ("50", "160"), "happy": ("90", "210"), "sad": ("15", "110")}
CLIPS_PER_LABEL = 3
EDGE_VENV = PROJECT / ".venv-edge"


def say(path: Path, sentence: str, pitch: str, speed: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-p", pitch, "-s", speed, "-w", str(path), sentence], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<root>/<label>/<n>.wav: CLIPS_PER_LABEL spoken sentences per label, and <root>/extra/ one more of each."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make sysdeps)")
    root = tmp_path_factory.mktemp("adapt") / "clips"
    for label, (pitch, speed) in VOICES.items():
        for n in range(CLIPS_PER_LABEL + 1):
            folder = root / label if n < CLIPS_PER_LABEL else root.parent / "extra" / label
            say(folder / f"{n}.wav", SENTENCES[n], pitch, speed)
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def adapt(*args: str):
    return runner.invoke(app, ["adapt", *args])


def assert_usage_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_adapted_model_is_written_and_every_verb_takes_it(clips: Path, tmp_path: Path):
    out = tmp_path / "mine.tflite"
    before = sha256(DEFAULT_MODEL)
    result = adapt(str(clips), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sha256(DEFAULT_MODEL) == before and out.is_file()
    info = runner.invoke(app, ["info", "--model", str(out)])
    assert f"adapted from: default.tflite (sha256 {before})" in info.stdout
    assert "clips per label: neutral 3, happy 3, sad 3" in info.stdout and "not calibrated" in info.stdout
    bundle = json.loads(runner.invoke(app, ["info", "--model", str(out), "--json"]).stdout)
    assert bundle["adaptation"]["clips_per_label"] == {"neutral": 3, "happy": 3, "sad": 3}
    assert bundle["adaptation"]["strength_chosen"] == "cross-validated"
    assert "calibration" not in bundle  # the base's calibration is not carried over
    classified = runner.invoke(app, ["classify", "--json", "--model", str(out), *map(str, sorted(clips.rglob("*.wav")))])
    assert classified.exit_code == 0, classified.output
    for line in json_lines(classified.stdout):
        assert set(line["probabilities"]) == set(VOICES)  # answers among the labels it was adapted to
        assert abs(sum(line["probabilities"].values()) - 1) < 1e-3
    bench = runner.invoke(app, ["bench", "--model", str(out), "--repeats", "5", "--json"])
    assert bench.exit_code == 0, bench.output


def test_adapting_fits_the_clips_better_than_the_base_and_keeps_the_base_at_zero(clips: Path, tmp_path: Path):
    out = tmp_path / "mine.tflite"
    assert adapt(str(clips), "--out", str(out), "--vad", "none").exit_code == 0
    base, adapted = EdgeModel(DEFAULT_MODEL), EdgeModel(out)
    files = sorted(clips.rglob("*.wav")) + sorted((clips.parent / "extra").rglob("*.wav"))
    correct = {}
    answers = {"base": Answers.of(base.bundle, tuple(VOICES)), "adapted": Answers.of(adapted.bundle)}
    for name, model in (("base", base), ("adapted", adapted)):
        from edge.classify import classify_file

        correct[name] = sum(classify_file(model, f, answers=answers[name]).label == f.parent.name for f in files)
    assert correct["adapted"] >= correct["base"] and correct["adapted"] >= len(files) - 2, correct
    zero = adapted.bundle.adaptation.head  # type: ignore[union-attr]
    zero = AdaptedHead(zero.columns, zero.pooled_mean, zero.pooled_scale, np.zeros_like(zero.weights))
    window = np.random.default_rng(0).normal(size=(adapted.bundle.params.frames_per_window, adapted.bundle.params.n_features))
    p, h = adapted.network_outputs(window.astype(np.float32))
    kept = p[list(zero.columns)] / p[list(zero.columns)].sum()
    np.testing.assert_allclose(zero.apply(h, p)[list(zero.columns)], kept, atol=1e-5)


def test_the_fit_reaches_the_minimum_of_its_objective():
    rng = np.random.default_rng(1)
    pooled = rng.normal(size=(40, 16)) + np.repeat(np.eye(4, 16) * 2, 10, axis=0)
    probabilities = rng.dirichlet(np.ones(5), size=40)
    targets, clips = np.repeat(np.arange(4), 10), np.arange(40) // 2
    head = fit_head((0, 1, 2, 4), pooled, probabilities, targets, clips, strength=2.0)
    inputs, log_p = start_head(head.columns, pooled).design(pooled, probabilities)
    weights, onehot = 1.0 / np.bincount(clips)[clips], np.eye(4)[targets]
    start = np.abs(gradient(np.zeros_like(head.weights), inputs, log_p, onehot, weights, 2.0)).max()
    assert np.abs(gradient(head.weights, inputs, log_p, onehot, weights, 2.0)).max() < 1e-3 * start
    assert head.apply(pooled, probabilities)[:, 3].max() == 0  # a label not adapted gets nothing
    inputs, log_p = head.design(pooled, probabilities)  # what the fit minimised, computed as it did
    np.testing.assert_allclose(head.apply(pooled, probabilities)[:, [0, 1, 2, 4]], softmax(log_p + inputs @ head.weights),
                               atol=1e-6)


def test_cross_validation_adapts_where_the_clips_say_so_and_stays_home_where_they_do_not():
    rng = np.random.default_rng(2)
    targets, clips = np.repeat(np.arange(3), 24), np.arange(72) // 3  # 8 clips per label, 3 windows each
    informative = rng.normal(size=(72, 8)) + 3 * np.eye(3, 8)[targets]
    noise = rng.normal(size=(72, 8))
    wrong = np.eye(3)[(targets + 1) % 3] * 0.6 + 0.2  # the base is confidently wrong
    said = np.where(rng.random(72) < 0.7, targets, (targets + rng.integers(1, 3, 72)) % 3)
    calibrated = np.eye(3)[said] * 0.55 + 0.15  # the base says 0.7 and is right 7 times in 10
    assert choose_strength((0, 1, 2), informative, wrong, targets, clips) == min(STRENGTHS)
    assert choose_strength((0, 1, 2), noise, calibrated, targets, clips) >= 64


def test_one_clip_per_label_keeps_the_pull_strong_unless_the_base_is_lost():
    one = np.arange(3)  # one clip (one window) per label
    pooled = np.random.default_rng(3).normal(size=(3, 8))
    right = np.eye(3) * 0.6 + 0.2
    assert base_clip_accuracy((0, 1, 2), right, one, one) == 1.0
    assert choose_strength((0, 1, 2), pooled, right, one, one) == ONE_CLIP_STRENGTH
    wrong = np.eye(3)[(one + 1) % 3] * 0.6 + 0.2  # the base gets none of the clips right
    assert base_clip_accuracy((0, 1, 2), wrong, one, one) == 0.0 < LOST_BASE_UA
    assert choose_strength((0, 1, 2), pooled, wrong, one, one) == LOST_BASE_STRENGTH < ONE_CLIP_STRENGTH
    # what the bundle (and `info`) records about it
    assert how_chosen(None, {"happy": 1, "sad": 1}).startswith("one clip per label")
    assert how_chosen(None, {"happy": 2, "sad": 1}) == "cross-validated"
    assert how_chosen(8.0, {"happy": 1, "sad": 1}) == "given"


def test_a_csv_manifest_gives_the_same_model_as_folders(clips: Path, tmp_path: Path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,label,speaker\n" + "".join(f"{f},{f.parent.name},me\n" for f in sorted(clips.rglob("*.wav"))))
    for name, data in (("folders", clips), ("csv", manifest)):
        assert adapt(str(data), "--out", str(tmp_path / f"{name}.tflite"), "--vad", "none").exit_code == 0
    heads = [EdgeModel(tmp_path / f"{name}.tflite").bundle.adaptation.head for name in ("folders", "csv")]  # type: ignore[union-attr]
    np.testing.assert_allclose(heads[0].weights, heads[1].weights, atol=1e-4)


def test_labels_narrows_what_is_adapted(clips: Path, tmp_path: Path):
    out = tmp_path / "two.tflite"
    result = adapt(str(clips), "--out", str(out), "--labels", "happy,sad", "--vad", "none")
    assert result.exit_code == 0, result.output
    assert "left out 3 clip(s)" in result.stderr
    assert Answers.of(EdgeModel(out).bundle).labels == ("happy", "sad")
    narrower = runner.invoke(app, ["classify", "--model", str(out), "--labels", "neutral,sad", str(clips / "sad" / "0.wav")])
    assert narrower.exit_code == 2 and "not adapted to" in narrower.stderr


def test_clips_of_one_label_are_refused_and_nothing_is_written(clips: Path, tmp_path: Path):
    out = tmp_path / "one.tflite"
    assert_usage_error(adapt(str(clips / "neutral"), "--out", str(out)), "clips of one label only (neutral)")
    only = tmp_path / "only" / "neutral"
    shutil.copytree(clips / "neutral", only)
    assert_usage_error(adapt(str(only.parent), "--out", str(out)), "clips of one label only (neutral)")
    assert not out.exists()


def test_bad_clips_are_skipped_with_a_message(clips: Path, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(clips, data)
    soundfile.write(str(data / "happy" / "nan.wav"), np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    write_audio(data / "sad" / "silent.wav", np.zeros(16000, dtype=np.float32))
    (data / "sad" / "broken.wav").write_bytes(b"RIFF not really")
    result = adapt(str(data), "--out", str(tmp_path / "out.tflite"), "--vad", "none")
    assert result.exit_code == 0, result.output
    assert "nan.wav: sample 0 is not a finite number" in result.stderr
    assert "silent.wav: silent" in result.stderr and "broken.wav" in result.stderr


def test_noise_without_speech_is_skipped_by_the_speech_detector(clips: Path, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(clips, data)
    noise = 0.05 * np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    write_audio(data / "sad" / "hiss.wav", noise)
    result = adapt(str(data), "--out", str(tmp_path / "out.tflite"))
    assert result.exit_code == 0, result.output
    assert "hiss.wav: no speech" in result.stderr


def test_nothing_usable_is_an_error(tmp_path: Path):
    for label in ("happy", "sad"):
        soundfile.write(str(write_audio(tmp_path / "d" / label / "x.wav", np.zeros(10)).with_name("n.wav")),
                        np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
        (tmp_path / "d" / label / "x.wav").unlink()
    assert_usage_error(adapt(str(tmp_path / "d"), "--out", str(tmp_path / "o.tflite")), "no usable clip")


def test_bad_input_is_a_usage_error(clips: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    boredom = tmp_path / "boredom"
    shutil.copytree(clips, boredom)
    shutil.copytree(clips / "sad", boredom / "boredom")
    hollow = tmp_path / "hollow"
    shutil.copytree(clips, hollow)
    (hollow / "angry").mkdir()
    not_a_model = tmp_path / "model.tflite"
    not_a_model.write_bytes(b"\0" * 64)
    out = str(tmp_path / "out.tflite")
    assert_usage_error(adapt(str(tmp_path / "empty"), "--out", out), "no audio files")
    assert_usage_error(adapt(str(boredom), "--out", out), "label boredom is not in the base model")
    assert_usage_error(adapt(str(hollow), "--out", out), "holds no audio clip (label angry)")
    assert_usage_error(adapt(str(clips), "--out", out, "--model", str(not_a_model)), "adapt needs an edge-ser model")
    assert_usage_error(adapt(str(clips), "--out", str(DEFAULT_MODEL)), "is the base model")
    assert_usage_error(adapt(str(clips), "--out", str(tmp_path / "missing" / "out.tflite")), "does not exist")
    assert_usage_error(adapt(str(clips), "--out", out, "--labels", "happy,angry"), "no usable clip of label angry")
    assert_usage_error(adapt(str(clips), "--out", out, "--labels", "happy,joyful"), "the base model does not have")
    assert not Path(out).exists()


def test_an_adapted_model_is_not_adapted_again(clips: Path, tmp_path: Path):
    first = tmp_path / "first.tflite"
    assert adapt(str(clips), "--out", str(first), "--vad", "none").exit_code == 0
    assert_usage_error(adapt(str(clips), "--out", str(tmp_path / "second.tflite"), "--model", str(first)),
                       "is already adapted")


def test_the_edge_install_adapts(clips: Path, tmp_path: Path):
    if not (EDGE_VENV / ".installed").is_file():
        pytest.skip("no edge-only environment: run `make edge-venv`")
    out = tmp_path / "edge.tflite"
    run = subprocess.run([str(EDGE_VENV / "bin" / "edge-ser"), "adapt", str(clips), "--out", str(out), "--vad", "none"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    classified = subprocess.run([str(EDGE_VENV / "bin" / "edge-ser"), "classify", "--json", "--vad", "none", "--model",
                                 str(out), str(clips / "happy" / "0.wav")], capture_output=True, text=True, timeout=300)
    assert classified.returncode == 0 and json_lines(classified.stdout)[0]["label"] in VOICES, classified.stderr


def test_the_documented_loop_listen_save_dir_then_adapt_then_listen(clips: Path, tmp_path: Path):
    """docs/adaptation.md: listen --save-dir keeps windows, the user sorts them into label folders, adapt,
    listen with the adapted model."""
    mine = tmp_path / "mine"
    for label in VOICES:
        speech = np.concatenate([soundfile.read(str(f), dtype="float32")[0] for f in sorted((clips / label).glob("*.wav"))])
        recording = write_audio(tmp_path / f"{label}.wav", speech, rate=soundfile.info(str(clips / label / "0.wav")).samplerate)
        saved = tmp_path / "saved" / label
        result = runner.invoke(app, ["listen", "--source", str(recording), "--save-dir", str(saved), "--hop", "1.5",
                                     "--vad", "none"])
        assert result.exit_code == 0, result.output
        (mine / label).mkdir(parents=True)
        for window in saved.glob("*.wav"):  # sorted by what it really is, whatever listen guessed
            window.rename(mine / label / window.name)
    assert adapt(str(mine), "--out", str(tmp_path / "mine.tflite"), "--vad", "none").exit_code == 0
    result = runner.invoke(app, ["listen", "--source", str(tmp_path / "sad.wav"), "--model", str(tmp_path / "mine.tflite"),
                                 "--vad", "none", "--json"])
    assert result.exit_code == 0, result.output
    assert {line["label"] for line in json_lines(result.stdout)} <= {*VOICES, "uncertain", "silence", "no speech"}


def test_the_layer_reads_the_pooled_vector_and_the_front_ends_mean_and_spread(clips: Path, tmp_path: Path):
    """What a room changes shows in the front-end's sequence more than in the pooled vector
    (docs/adaptation.md "What the layer reads"): the adapted file exposes both, and the layer reads the
    vector as it is and the sequence as its mean and spread over time."""
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "mine.tflite"
    assert adapt(str(clips), "--out", str(out), "--vad", "none").exit_code == 0
    raw = Interpreter(model_path=str(out))
    raw.allocate_tensors()
    shapes = [tuple(d["shape"]) for d in raw.get_output_details()]
    assert len(shapes) == 3 and len(shapes[1]) == 2 and len(shapes[2]) == 3, shapes
    adapted = EdgeModel(out)
    assert adapted.bundle.adaptation.head.pooled_mean.size == shapes[1][1] + 2 * shapes[2][2]  # type: ignore[union-attr]
    window = np.random.default_rng(1).normal(size=tuple(raw.get_input_details()[0]["shape"][1:]))
    raw.set_tensor(raw.get_input_details()[0]["index"], window[None].astype(np.float32))
    raw.invoke()
    pooled, front_end = (raw.get_tensor(d["index"])[0] for d in raw.get_output_details()[1:])
    _, summary = adapted.network_outputs(window.astype(np.float32))
    np.testing.assert_allclose(summary, np.concatenate([pooled, front_end.mean(axis=0), front_end.std(axis=0)]),
                               rtol=1e-5, atol=1e-6)


def test_a_model_adapted_on_the_pooled_vector_alone_still_runs(tmp_path: Path):
    """Files adapted before the layer read the front-end: the pooled vector as the only further output."""
    from edge.bundle_json import read_bundle
    from edge.model_file import _schema, packed_with_bundle, pooled_tensor

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(DEFAULT_MODEL.read_bytes(), 0))
    graph = model.subgraphs[0]
    graph.outputs = np.array([int(graph.outputs[0]), pooled_tensor(schema, model)], dtype=np.int32)
    bundle = read_bundle(DEFAULT_MODEL)
    size = int(graph.tensors[pooled_tensor(schema, model)].shape[-1])
    head = AdaptedHead((0, 1, 2), np.zeros(size), 1.0, np.zeros((size + 4, 3)))
    stored = bundle.to_dict() | {"adaptation": {"method": "older", "labels": list(bundle.labels[:3]), "base_model": "x",
                                                "base_sha256": "0" * 64, "head": head.to_dict()}}
    old = tmp_path / "old.tflite"
    old.write_bytes(packed_with_bundle(schema, model, stored, DEFAULT_MODEL.stat().st_size))
    model_file = EdgeModel(old)
    window = np.zeros((bundle.params.frames_per_window, bundle.params.n_features), dtype=np.float32)
    p, h = model_file.network_outputs(window)
    assert h is not None and h.shape == (size,)
    kept = p[:3] / p[:3].sum()
    np.testing.assert_allclose(model_file.predict(window)[:3], kept, atol=1e-5)
