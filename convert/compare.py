"""Drift check and gate: float Keras vs every TFLite mode on the same held-out speakers' windows
(for a final fit, which holds nobody out, on its training utterances: drift, not accuracy)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from convert import DEFAULT_MAX_DRIFT_PP, DEFAULT_MODE, MODES, ConvertError
from convert.report import CompareReport, ModeRow, VariantScores, write_compare_reports
from convert.tflite import (
    CALIBRATION_WINDOWS,
    check_layout,
    check_mode,
    check_ops,
    convert,
    finish_flatbuffer,
    keras2_twin,
    load_run,
)
from edge.bundle import Bundle, Conversion
from edge.files import write_bytes_whole
from edge.runtime import EdgeModel
from edge.settings import DEFAULT_LAYOUT

LATENCY_REPEATS = 100
TFLITE_RUNTIME_PYTHON = Path(".venv-tflite-runtime/bin/python")  # made by `make tflite-runtime-env`


@dataclass(frozen=True)
class EvaluationData:
    labels: list[str]
    test_clips: list[np.ndarray]
    test_targets: np.ndarray
    calibration: np.ndarray  # (n, frames, features) from training speakers only
    evaluated_on: str  # which utterances test_clips are, for every report and the embedded record


def evaluation_data(bundle: Bundle, data: tuple[Path, ...] = ()) -> EvaluationData:
    """Rebuild the run's split through the shared feature module (cached audio and windows)."""
    from train.recipe import eval_clips, load_datasets, make_split, request_from_bundle

    request, seed = request_from_bundle(bundle, data)
    missing = [str(p) for p in request.data if not Path(p).exists()]
    if missing:
        raise ConvertError(f"training data not found at {', '.join(missing)}; pass --data to point at it")
    dataset = load_datasets(request)
    split = make_split(dataset, request, seed)
    labels = list(bundle.labels)
    targets = np.array([labels.index(u.label) for u in dataset.utterances])
    step = max(1, len(split.train) // CALIBRATION_WINDOWS)
    calibration_clips = eval_clips(dataset, split.train[::step][:CALIBRATION_WINDOWS], request.params, request.cache_dir)
    calibration = np.stack([clip[0] for clip in calibration_clips]) if calibration_clips else np.zeros((0,))
    if len(calibration) == 0:
        raise ConvertError("the calibration set is empty: the run's training speakers have no usable audio")
    scored, evaluated_on = split.test, f"{len(split.test)} test utterances ({split.description})"
    if not scored:
        scored = split.train
        evaluated_on = (f"the {len(scored)} training utterances of a final fit (no held-out speakers: the drift "
                        "is measured, the accuracy is not an estimate)")
    return EvaluationData(labels, eval_clips(dataset, scored, request.params, request.cache_dir),
                          targets[list(scored)], calibration, evaluated_on)


def median_latency_ms(predict, window: np.ndarray, repeats: int = LATENCY_REPEATS) -> float:
    """Median wall time of `predict(window)` after one warm-up call."""
    predict(window)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(window)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def variant_scores(probabilities: np.ndarray, float_probabilities: np.ndarray, data: EvaluationData) -> VariantScores:
    from train.evaluate import classification_metrics

    difference = np.abs(probabilities - float_probabilities)
    return VariantScores(metrics=classification_metrics(data.test_targets, probabilities, data.labels),
                         agreement=float(np.mean(probabilities.argmax(1) == float_probabilities.argmax(1))),
                         max_abs_prob_diff=float(difference.max()), mean_abs_prob_diff=float(difference.mean()))


def build_variant(twin, mode: str, data: EvaluationData, int8_io: bool = False, layout: str = DEFAULT_LAYOUT) -> bytes:
    """Convert and assert the op list (the LSTM as `layout` says, no Flex); `finish_flatbuffer` embeds the bundle."""
    representative = lambda: ([w[None]] for w in data.calibration)  # noqa: E731
    raw = convert(twin, mode, representative, int8_io)
    check_ops(raw, layout)
    return raw


def evaluate_variant(model: EdgeModel, float_probabilities: np.ndarray, data: EvaluationData) -> VariantScores:
    from train.evaluate import predict_clips

    return variant_scores(predict_clips(model.predict_batch, data.test_clips), float_probabilities, data)


def float_scores(model, data: EvaluationData) -> tuple[VariantScores, np.ndarray]:
    from train.evaluate import predict_clips

    probabilities = predict_clips(lambda x: model(x, training=False).numpy(), data.test_clips)
    return variant_scores(probabilities, probabilities, data), probabilities


def loadable_by(paths: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Which runtimes load and run each file: ai-edge-litert, tf.lite, and tflite-runtime 2.14
    (in its own numpy<2 environment; 'not tested' when that environment does not exist)."""
    script = Path(__file__).with_name("try_load.py")
    result: dict[str, dict[str, str]] = {mode: {} for mode in paths}
    runtimes = [("ai-edge-litert", sys.executable), ("tensorflow", sys.executable),
                ("tflite-runtime", str(TFLITE_RUNTIME_PYTHON) if TFLITE_RUNTIME_PYTHON.exists() else None)]
    for runtime, python in runtimes:
        if python is None:
            for mode in paths:
                result[mode][runtime] = "not tested (make tflite-runtime-env)"
            continue
        completed = subprocess.run([python, str(script), runtime, *map(str, paths.values())],
                                   capture_output=True, text=True, timeout=300,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        answers = json.loads(completed.stdout.strip().splitlines()[-1]) if completed.returncode == 0 else {}
        for mode, path in paths.items():
            result[mode][runtime] = answers.get(str(path), f"error: {completed.stderr.strip()[-200:]}")
    return result


def compare(run_dir: Path, modes: tuple[str, ...] = MODES, data_paths: tuple[Path, ...] = (),
            int8_io: bool = False) -> CompareReport:
    """Convert every mode, score all against float, write model-<mode>.tflite and compare.{json,md,png}."""
    for mode in modes:
        check_mode(mode)
    model, bundle = load_run(run_dir)
    data = evaluation_data(bundle, data_paths)
    twin = keras2_twin(model, bundle)
    scores, float_probabilities = float_scores(model, data)
    float_row = ModeRow(scores=scores, size_bytes=(Path(run_dir) / "model.keras").stat().st_size,
                        latency_ms=median_latency_ms(lambda x: model(x, training=False), data.test_clips[0][:1], 20))
    paths, measured = {}, {}
    for mode in modes:
        print(f"converting {mode} ...", file=sys.stderr, flush=True)
        paths[mode] = Path(run_dir) / f"model-{mode}.tflite"
        write_bytes_whole(paths[mode], finish_flatbuffer(build_variant(twin, mode, data, int8_io), bundle))
        edge_model = EdgeModel(paths[mode], threads=1)
        measured[mode] = (evaluate_variant(edge_model, float_probabilities, data),
                          median_latency_ms(edge_model.predict, data.test_clips[0][0]))
    runtimes = loadable_by(paths)  # after every file is written: one process per runtime loads them all
    report = CompareReport(
        split=bundle.split.description if bundle.split else "", n_test=len(data.test_targets),
        evaluated_on=data.evaluated_on, float_model=float_row,
        modes={mode: ModeRow(scores=scores, size_bytes=paths[mode].stat().st_size, latency_ms=latency,
                             loadable_by=runtimes[mode]) for mode, (scores, latency) in measured.items()})
    write_compare_reports(Path(run_dir), report)
    return report


@dataclass
class GateResult:
    mode: str
    passed: bool
    drift_pp: float
    float_accuracy: float
    accuracy: float
    path: Path | None
    message: str


def quantize(run_dir: Path, mode: str = DEFAULT_MODE, max_drift_pp: float = DEFAULT_MAX_DRIFT_PP,
             force: bool = False, data_paths: tuple[Path, ...] = (), output: Path | None = None,
             int8_io: bool = False, layout: str = DEFAULT_LAYOUT) -> GateResult:
    """Convert one mode; write it only when its test accuracy is within `max_drift_pp` of float."""
    check_mode(mode)
    check_layout(layout)
    model, bundle = load_run(run_dir)
    data = evaluation_data(bundle, data_paths)
    converted = build_variant(keras2_twin(model, bundle, layout), mode, data, int8_io, layout)
    float_result, float_probabilities = float_scores(model, data)
    with tempfile.TemporaryDirectory() as scratch:
        candidate = Path(scratch) / "candidate.tflite"
        candidate.write_bytes(finish_flatbuffer(converted, bundle))
        scores = evaluate_variant(EdgeModel(candidate, threads=1), float_probabilities, data)
    drift = 100 * (float_result.accuracy - scores.accuracy)
    passed = drift <= max_drift_pp
    flatbuffer = finish_flatbuffer(converted, replace(bundle, conversion=Conversion(
        mode=mode, accuracy=scores.accuracy, float_accuracy=float_result.accuracy, drift_pp=drift,
        agreement=scores.agreement, evaluated_on=data.evaluated_on, layout=layout)))
    suffix = "" if layout == DEFAULT_LAYOUT else f"-{layout}"
    target = Path(output) if output else Path(run_dir) / f"model-{mode}{suffix}.tflite"
    verdict = (f"{mode}{suffix}: accuracy {scores.accuracy:.4f} vs float {float_result.accuracy:.4f} "
               f"(drift {drift:+.2f} pp, limit {max_drift_pp:.2f} pp; agreement {scores.agreement:.3f}) "
               f"on {data.evaluated_on}")
    if passed or force:
        write_bytes_whole(target, flatbuffer)
    message = verdict + (f" -> {target}" if passed or force else " -> gate failed, nothing written")
    if not passed and force:
        message += " (written anyway: --force)"
    return GateResult(mode, passed, drift, float_result.accuracy, scores.accuracy,
                      target if passed or force else None, message)
