"""Calibration: temperature scaling fitted on held-out speakers, carried into the .tflite, applied on the device."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.calibration import CoveragePoint, apply_temperature, threshold_for
from edge.cli import app
from tests.support.checks import run_blocked
from tests.support.data import ANGRY

runner = CliRunner()


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def synthetic_held_out(scale: float, n: int = 6000, classes: int = 6, seed: int = 0):
    """Labels drawn from softmax(z) (calibrated by construction); the 'model' says softmax(scale * z)."""
    from train.calibrate import HeldOut

    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, classes))
    targets = np.array([rng.choice(classes, p=p) for p in softmax(logits)])
    windows = [p[None] for p in softmax(scale * logits)]
    return HeldOut([f"l{i}" for i in range(classes)], windows, targets, np.array(["a", "b"] * (n // 2)),
                   np.arange(n) % 3)


@pytest.mark.parametrize("scale", [0.5, 2.5])
@pytest.mark.host
def test_a_known_logit_scale_is_recovered_within_five_percent(scale: float):
    pytest.importorskip("scipy")
    from train.calibrate import fit_temperature

    assert fit_temperature(synthetic_held_out(scale)).temperature == pytest.approx(scale, rel=0.05)


def two_corpora(copies_of_a: int):
    """Corpus a calibrated (scale 1), corpus b over-confident (scale 2.5); a's clips repeated `copies_of_a` times."""
    from train.calibrate import HeldOut

    a, b = synthetic_held_out(1.0, n=1200, seed=1), synthetic_held_out(2.5, n=1200, seed=2)
    windows = a.windows * copies_of_a + b.windows
    targets = np.concatenate([np.tile(a.targets, copies_of_a), b.targets])
    corpora = np.array(["a"] * (1200 * copies_of_a) + ["b"] * 1200)
    return HeldOut(a.labels, windows, targets, corpora, np.arange(len(targets)) % 3)


@pytest.mark.host
@pytest.mark.parametrize("fit_name", ["fit_temperature", "fit_confidence_map", "fit_gap_map"])
def test_every_corpus_weighs_the_same_in_a_fit_however_many_clips_it_has(fit_name: str):
    pytest.importorskip("scipy")
    import train.calibrate

    fit = getattr(train.calibrate, fit_name)
    probe = synthetic_held_out(2.0, n=600, seed=3)
    once, thrice = two_corpora(1), two_corpora(3)
    weighed = [train.calibrate.clip_probabilities(probe, fit(held)).max(1).mean() for held in (once, thrice)]
    assert weighed[0] == pytest.approx(weighed[1], abs=0.01)  # three times the clips of a: the same calibration
    by_clip = [train.calibrate.clip_probabilities(probe, fit(held, weigh_corpora=False)).max(1).mean()
               for held in (once, thrice)]
    assert abs(by_clip[0] - by_clip[1]) > 0.02  # weighed by clip count, the bigger corpus pulls it its way


@pytest.mark.host
def test_calibration_lowers_ece_and_keeps_the_argmax():
    pytest.importorskip("scipy")
    from edge.calibration import Calibration
    from train.calibrate import calibration_report, clip_probabilities

    held = synthetic_held_out(2.5)
    report = calibration_report(held, ["a", "b", "c"])
    assert report.method != "none" and report.methods["none"].after.overall.ece > 0.1
    for name in ("temperature", "confidence map", "gap map"):
        method = report.methods[name]
        assert report.before.overall.ece > 0.1 > 0.03 > method.after.overall.ece
        assert method.after.overall.accuracy == report.before.overall.accuracy
        assert method.cross_fitted and method.cross_fitted.overall.ece < 0.03
        assert method.unseen_corpus and set(method.unseen_corpus.per_corpus) == {"a", "b"}  # each scored by a fit without it
    raw = clip_probabilities(held)
    for calibration in (Calibration(2.5), Calibration(confidence_map=((0.2, 0.3), (0.9, 0.5))),
                        Calibration(gap_map=((0.1, 0.3), (2.0, 0.8)))):
        assert np.array_equal(clip_probabilities(held, calibration).argmax(1), raw.argmax(1))
    clips = report.risk_coverage["clips"]
    assert clips[0].coverage == 1.0 and clips[0].threshold == 0.0
    assert all(a.coverage >= b.coverage for a, b in zip(clips, clips[1:]))


@pytest.mark.host
def test_ece_of_a_known_table():
    from train.calibrate import reliability

    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    targets = np.array([0, 1, 0, 0])  # 0.9-bin: 50 % right (gap 0.4); 0.6-bin: 100 % right (gap 0.4)
    scores = reliability(probabilities, targets)
    assert scores.ece == pytest.approx(0.4) and scores.accuracy == 0.75


def test_a_confidence_map_sets_the_top_probability_and_keeps_the_order():
    from edge.calibration import Calibration, with_top_probability

    p = softmax(np.random.default_rng(2).normal(size=(40, 8)) * 2).astype(np.float32)
    target = np.linspace(0.2, 0.95, 40)
    out = with_top_probability(p, target)
    assert np.allclose(out.max(1), target, atol=1e-4) and np.allclose(out.sum(1), 1, atol=1e-5)
    assert np.array_equal(np.argsort(out, 1), np.argsort(p, 1))
    calibration = Calibration(confidence_map=((0.3, 0.25), (0.9, 0.5)))
    single = calibration.apply(p[0])
    assert single.shape == (8,) and single.max() == pytest.approx(np.interp(p[0].max(), [0.3, 0.9], [0.25, 0.5]), abs=1e-4)


def test_a_gap_map_reads_the_log_ratio_of_the_two_largest_probabilities():
    from edge.calibration import Calibration, top_two_gap

    p = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], dtype=np.float32)
    np.testing.assert_allclose(top_two_gap(p), [np.log(5 / 3), np.log(2)], rtol=1e-6)
    out = Calibration(gap_map=((0.0, 0.3), (1.0, 0.7))).apply(p)
    np.testing.assert_allclose(out.max(1), [0.3 + 0.4 * np.log(5 / 3), 0.3 + 0.4 * np.log(2)], atol=1e-4)
    assert np.array_equal(np.argsort(out, 1), np.argsort(p, 1))


@pytest.mark.host
def test_a_gap_map_calibrates_corpora_that_spread_the_rest_differently():
    """Two corpora whose clips have the same top-1 probabilities, but in corpus b the rest sits on one
    runner-up label and in a it is spread over two; accuracy follows the gap to the runner-up. The
    top-1 cannot tell the corpora apart and one confidence map fails both; the gap map calibrates each."""
    pytest.importorskip("sklearn")
    from train.calibrate import HeldOut, cross_fitted, fit_confidence_map, fit_gap_map

    rng, n = np.random.default_rng(4), 8000
    top = rng.uniform(0.4, 0.9, n)
    spread = np.arange(n) % 2 == 0  # corpus a
    rest = np.where(spread[:, None], np.column_stack([(1 - top) / 2] * 2), np.column_stack([1 - top - 1e-3, [1e-3] * n]))
    vectors = np.column_stack([top, rest])
    gap = np.log(top / rest.max(axis=1))
    right = rng.random(n) < 1 - 0.6 * np.exp(-gap)
    held = HeldOut(["l0", "l1", "l2"], [v[None] for v in vectors], np.where(right, 0, rng.integers(1, 3, n)),
                   np.where(spread, "a", "b"), np.arange(n) % 3)
    by_top, by_gap = (cross_fitted(held, fit).per_corpus for fit in (fit_confidence_map, fit_gap_map))
    assert min(by_top[c].ece for c in "ab") > 0.05
    assert max(by_gap[c].ece for c in "ab") < 0.03


def test_temperature_one_is_the_identity_and_the_argmax_never_moves():
    p = softmax(np.random.default_rng(1).normal(size=(50, 8))).astype(np.float32)
    assert apply_temperature(p, 1.0) is p
    for t in (0.3, 2.0, 7.0):
        scaled = apply_temperature(p, t)
        assert np.allclose(scaled.sum(axis=1), 1, atol=1e-5)
        assert np.array_equal(scaled.argmax(1), p.argmax(1))
    assert apply_temperature(p, 2.0).max(1).mean() < p.max(1).mean()


@pytest.mark.host
def test_threshold_for_picks_the_most_coverage_that_reaches_the_target():
    curve = [CoveragePoint(0.0, 1.0, 0.5), CoveragePoint(0.4, 0.6, 0.7), CoveragePoint(0.6, 0.3, 0.85)]
    assert threshold_for(curve, 0.7).threshold == 0.4
    assert threshold_for(curve, 0.8).threshold == 0.6
    assert threshold_for(curve, 0.9) is None


def calibrated_model(tmp_path: Path, temperature: float | None, confidence_map: list | None = None,
                     gap_map: list | None = None) -> Path:
    """The shipped model with a calibration (temperature or a map, and a window curve) in its bundle,
    or with none (temperature None)."""
    pytest.importorskip("tensorflow")
    from convert.tflite import finish_flatbuffer
    from edge.bundle_json import read_bundle
    from edge.runtime import DEFAULT_MODEL

    bundle = read_bundle(DEFAULT_MODEL).to_dict()
    if temperature is None:
        bundle.pop("calibration", None)
        path = tmp_path / "uncalibrated.tflite"
        path.write_bytes(finish_flatbuffer(DEFAULT_MODEL.read_bytes(), bundle))
        return path
    curve = [{"threshold": t, "coverage": 1 - t, "accuracy": 0.4 + 0.5 * t} for t in (0.0, 0.2, 0.4, 0.6, 0.8)]
    bundle["calibration"] = {"temperature": temperature, "confidence_map": confidence_map or [], "method": "temperature",
                             **({"gap_map": gap_map} if gap_map else {}),
                             "fitted_on": "a test",
                             "ece_before": 0.2, "ece_after": 0.03, "ece_after_per_corpus": {},
                             "risk_coverage": {"windows": curve, "clips": curve}}
    path = tmp_path / "calibrated.tflite"
    path.write_bytes(finish_flatbuffer(DEFAULT_MODEL.read_bytes(), bundle))
    return path


@pytest.mark.parametrize("confidence_map, gap_map", [(None, None), ([[0.2, 0.22], [0.6, 0.4], [1.0, 0.5]], None),
                                                     (None, [[0.0, 0.2], [1.0, 0.3], [4.0, 0.5]])])
def test_the_edge_applies_the_stored_calibration_without_tensorflow(tmp_path: Path, confidence_map, gap_map):
    model = calibrated_model(tmp_path, 2.0, confidence_map, gap_map)
    plain_model = calibrated_model(tmp_path, None)
    result = run_blocked(f"""
        import json, subprocess, sys
        from edge.calibration import Calibration
        from edge.runtime import EdgeModel
        from edge.classify import classify_file
        m = EdgeModel({str(model)!r})
        plain = EdgeModel({str(plain_model)!r})
        calibrated, raw = classify_file(m, {str(ANGRY)!r}), classify_file(plain, {str(ANGRY)!r})
        expected = m.bundle.calibration.apply([raw.probabilities[l] for l in plain.labels])
        print(json.dumps([calibrated.label, raw.label, calibrated.confidence, raw.confidence, float(max(expected))]))
    """)
    assert result.returncode == 0, result.stderr
    label, raw_label, confidence, raw_confidence, expected = json.loads(result.stdout)
    assert label == raw_label and confidence < raw_confidence
    assert confidence == pytest.approx(expected, abs=1e-4)


def test_listen_target_accuracy_picks_the_threshold_from_the_curve(tmp_path: Path):
    model = calibrated_model(tmp_path, 1.5)
    picked = runner.invoke(app, ["listen", "--model", str(model), "--source", str(ANGRY), "--target-accuracy", "0.7"])
    assert picked.exit_code == 0, picked.output
    assert "threshold 0.60: held-out windows 70% accurate, 40% of them answered" in picked.stderr
    unreachable = runner.invoke(app, ["listen", "--model", str(model), "--source", str(ANGRY), "--target-accuracy", "0.95"])
    assert unreachable.exit_code == 1 and "no threshold reaches 95%" in unreachable.stderr
    both = runner.invoke(app, ["listen", "--model", str(model), "--source", str(ANGRY), "--target-accuracy", "0.7",
                               "--threshold", "0.5"])
    assert both.exit_code == 2
    info = runner.invoke(app, ["info", "--model", str(model)])
    assert "calibration: temperature 1.500, held-out ECE 0.200 -> 0.030" in info.stdout, info.stdout
    assert "70% accurate at threshold 0.60 (40% answered)" in info.stdout


def test_a_model_without_calibration_says_so(tmp_path: Path):
    result = runner.invoke(app, ["listen", "--model", str(calibrated_model(tmp_path, None)), "--source", str(ANGRY),
                                 "--target-accuracy", "0.7"])
    assert result.exit_code == 1 and "no held-out risk-coverage curve" in result.stderr


def test_the_shipped_models_carry_their_calibration():
    from edge.bundle_json import read_bundle
    from edge.runtime import MODELS_DIR

    default, open_model = read_bundle(MODELS_DIR / "default.tflite"), read_bundle(MODELS_DIR / "open.tflite")
    assert default.calibration_report.method == "gap map" and default.calibration.gap_map
    assert default.calibration_report.ece_after <= 0.05 < default.calibration_report.ece_before
    assert set(default.calibration_report.ece_unseen_corpus) == {"cremad", "ravdess", "tess"}
    info = runner.invoke(app, ["info"])
    assert "ECE per corpus: cremad" in info.stdout and "ECE on a corpus left out of the fit: cremad" in info.stdout
    assert open_model.calibration_report.method == "none" and open_model.calibration_report.risk_coverage["windows"]
    result = runner.invoke(app, ["listen", "--model", "open", "--source", str(ANGRY), "--target-accuracy", "0.7"])
    assert result.exit_code == 0 and "threshold 0.60" in result.stderr


@pytest.mark.host
def test_calibrate_a_run_and_quantize_carries_it(tiny_run, tmp_path: Path):
    result, runs = tiny_run
    assert result.exit_code == 0, result.output
    run = runs / "tiny"
    calibrated = runner.invoke(app, ["calibrate", str(run)])
    assert calibrated.exit_code == 0, calibrated.output
    bundle = json.loads((run / "bundle.json").read_text())
    temperature = bundle["calibration"]["temperature"]
    assert 0.05 <= temperature <= 20 or bundle["calibration"]["confidence_map"] or bundle["calibration"]["gap_map"]
    assert {"calibration.md", "calibration.json", "reliability.png"} <= {p.name for p in run.iterdir()}
    assert "ECE before" in (run / "calibration.md").read_text()
    out = tmp_path / "tiny.tflite"
    quantized = runner.invoke(app, ["quantize", str(run), "--output", str(out), "--max-drift", "100"])
    assert quantized.exit_code == 0, quantized.output
    from edge.bundle_json import read_bundle
    from edge.calibration import Calibration

    assert read_bundle(out).calibration_report.method == bundle["calibration"]["method"]
    assert read_bundle(out).calibration == Calibration.from_dict(bundle["calibration"])


def test_calibrate_needs_into_with_several_runs_and_speaker_runs(tmp_path: Path):
    several = runner.invoke(app, ["calibrate", str(tmp_path / "a"), str(tmp_path / "b")])
    assert several.exit_code == 2
    missing = runner.invoke(app, ["calibrate", str(tmp_path / "a")])
    assert missing.exit_code == 1 and "Traceback" not in missing.output


@pytest.mark.host
def test_maps_per_window_count_fix_what_one_map_cannot():
    """benchmarks.calibration_by_group: at the same confidence, single-window clips are right 0.15
    less often than they say and two-window clips 0.15 more often; one map per window count calibrates
    both, one map for all cannot (pooled, the two cancel; scored apart, as corpora a and b, they do not)."""
    pytest.importorskip("sklearn")
    from benchmarks.calibration_by_group import cross_fitted_by_group
    from train.calibrate import HeldOut

    rng, n = np.random.default_rng(6), 6000
    windows_per_clip = np.repeat([1, 2], n // 2)
    top = rng.uniform(0.45, 0.85, n)
    right = rng.random(n) < top + np.where(windows_per_clip == 1, -0.15, 0.15)
    vectors = np.column_stack([top, (1 - top) / 2, (1 - top) / 2])
    targets = np.where(right, 0, rng.integers(1, 3, n))
    held = HeldOut(["l0", "l1", "l2"], [np.repeat(v[None], k, axis=0) for v, k in zip(vectors, windows_per_clip)],
                   targets, np.where(windows_per_clip == 1, "a", "b"), np.arange(n) % 3)
    one_map = cross_fitted_by_group(held, np.ones(n, dtype=int), held.folds).per_corpus
    per_count = cross_fitted_by_group(held, windows_per_clip, held.folds).per_corpus
    assert min(one_map[c].ece for c in "ab") > 0.1
    assert max(per_count[c].ece for c in "ab") < 0.04
    too_small = cross_fitted_by_group(held, np.arange(n), held.folds).per_corpus  # groups of 1 clip: the one map
    assert too_small == one_map


@pytest.mark.host
def test_label_subset_scores_answer_among_the_kept_labels():
    """benchmarks.label_subset: clips of labels 0 and 1 that the network gave to label 2 (the way CREMA-D
    clips get "calm") are right once label 2 may not be answered; clips of label 2 are not scored."""
    pytest.importorskip("sklearn")
    from benchmarks.label_subset import subset_scores

    probabilities = np.array([[0.3, 0.2, 0.5], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    every, subset = subset_scores(probabilities, np.array([0, 0, 1, 2]), np.array([0, 1]))
    assert every.n == subset.n == 3
    assert every.accuracy == pytest.approx(1 / 3) and subset.accuracy == 1.0
    assert subset.mean_confidence == pytest.approx(np.mean([0.6, 2 / 3, 0.6]))
