"""`classify` and the windowing under it, with the real shipped model and real files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from edge.cli import app
from edge.resample import resample
from edge.runtime import DEFAULT_MODEL, EdgeModel
from tests.support.checks import json_lines
from tests.support.data import ANGRY, DEMO, PROJECT, write_audio

runner = CliRunner()


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
    assert "2 of 3 files could not be classified" in result.stderr


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


@pytest.mark.slow
@pytest.mark.host
def test_edge_classify_reproduces_the_converters_record_of_the_shipped_model():
    """The edge path (numpy features + TFLite) on the shipped model's evaluation set (its final fit's
    training utterances: CREMA-D, RAVDESS actors 01-20 and TESS) scores what the converter embedded."""
    pytest.importorskip("tensorflow")
    from edge.classify import classify_file, true_label
    from tests.support.data import real_corpus
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
