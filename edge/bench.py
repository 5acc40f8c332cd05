"""`edge-ser bench`: per-window cost of features and inference, real-time factor, memory, cold start.

Figures are medians and 95th percentiles over `repeats` runs on a fixed pseudo-random signal (the
cost of the features and of a fused LSTM does not depend on the audio's content). Compare models
by the ratios printed against the first one, measured in the same run: these machines are shared.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge.features import FeatureParams, StreamingFeatures, features_for_window, window_features
from edge.runtime import EdgeModel
from edge.settings import DEFAULT_BENCH_REPEATS, DEFAULT_HOP_SECONDS, RuntimeSettings
from edge.windowing import frame_power, trim_window_frames

COLD_START_SCRIPT = """
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np
from edge.runtime import EdgeModel
t1 = time.perf_counter()
model = EdgeModel(sys.argv[1], threads=int(sys.argv[2]), delegate=sys.argv[3], runtime_name=sys.argv[4] or None)
t2 = time.perf_counter()
p = model.bundle.params
model.predict(np.zeros((p.frames_per_window, p.n_features), np.float32))
t3 = time.perf_counter()
print(json.dumps({"import_ms": 1e3 * (t1 - t0), "load_ms": 1e3 * (t2 - t1), "first_prediction_ms": 1e3 * (t3 - t2),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p95_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> "Timing":
        ms = np.array(seconds) * 1e3
        return cls(round(float(np.median(ms)), 4), round(float(np.percentile(ms, 95)), 4))


TIMINGS = ("features_stream", "features_window", "inference")


@dataclass(frozen=True)
class BenchResult:
    model: str
    size_kib: float
    runtime: str
    delegate: str
    threads: int
    features_stream: Timing  # per hop, as `listen` does it: the new frames + per-window normalisation
    features_window: Timing  # a whole window from raw audio, as `classify` does it
    inference: Timing
    per_window_ms: float  # features_stream + inference medians: the cost of one live decision
    real_time_factor: float  # per_window_ms / hop: processing seconds per second of live audio
    peak_rss_mib: float  # of a fresh process that imported, loaded and predicted once
    cold_start_ms: float  # import + load + first prediction in a fresh process
    cold_start: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchResult":
        values: dict[str, Any] = {k: Timing(**v) if k in TIMINGS else v for k, v in data.items()}
        return cls(**values)


def time_calls(function: Callable[[], object], repeats: int) -> list[float]:
    """Seconds each of `repeats` calls of `function` took."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def stream_feature_times(params: FeatureParams, signal: np.ndarray, hop: int, repeats: int) -> list[float]:
    """Time `repeats` hops of streaming features: the frames of one hop, the window cut to its loud
    span, then the window's normalisation (what `listen` computes per decision besides inference)."""
    features = StreamingFeatures(params)
    recent = features.push(signal[: params.window_samples])[-params.frames_per_window:]
    power = frame_power(signal[: params.window_samples], params.win_length, params.hop_length)[-params.frames_per_window:]
    times = []
    for i in range(repeats):
        chunk = signal[(i % 8) * hop: (i % 8 + 1) * hop]
        start = time.perf_counter()
        new = features.push(chunk)
        recent = np.concatenate((recent, new))[-params.frames_per_window:]
        power = np.concatenate((power, frame_power(chunk, params.win_length, params.hop_length)))[-params.frames_per_window:]
        window_features(trim_window_frames(recent, power), params)
        times.append(time.perf_counter() - start)
    return times


def cold_start(model_path: Path, threads: int, delegate: str, runtime: str | None) -> dict[str, Any]:
    output = subprocess.run([sys.executable, "-c", COLD_START_SCRIPT, str(model_path), str(threads), delegate,
                             runtime or ""], capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return figures


def bench_model(model_path: Path, threads: int = RuntimeSettings.threads, delegate: str = RuntimeSettings.delegate,
                runtime: str | None = RuntimeSettings.runtime_name, repeats: int = DEFAULT_BENCH_REPEATS,
                hop_seconds: float = DEFAULT_HOP_SECONDS) -> BenchResult:
    model = EdgeModel(model_path, threads=threads, delegate=delegate, runtime_name=runtime)
    params = model.bundle.params
    hop = int(round(hop_seconds * params.sample_rate))
    signal = (np.random.default_rng(0).standard_normal(params.window_samples + 8 * hop) * 0.1).astype(np.float32)
    signal[(np.arange(signal.size) % params.sample_rate) < 0.3 * params.sample_rate] *= 1e-3  # pauses to trim
    window = signal[: params.window_samples]
    matrix = features_for_window(window, params)
    model.predict(matrix)  # warm-up
    stream_feature_times(params, signal, hop, 50)  # warm-up: else the first model benched pays the first use
    streamed = Timing.of(stream_feature_times(params, signal, hop, repeats))
    whole = Timing.of(time_calls(lambda: features_for_window(window, params), repeats))
    inference = Timing.of(time_calls(lambda: model.predict(matrix), repeats))
    per_window = streamed.median_ms + inference.median_ms
    cold = cold_start(model_path, threads, delegate, model.runtime.name)
    return BenchResult(str(model_path), round(model_path.stat().st_size / 1024, 1), model.runtime.name,
                       model.delegate_report.in_use, threads, streamed, whole, inference, round(per_window, 4),
                       round(per_window / (hop_seconds * 1e3), 5), round(cold["peak_rss_mib"], 1),
                       round(cold["import_ms"] + cold["load_ms"] + cold["first_prediction_ms"], 1), cold)


def bench_table(results: list[BenchResult]) -> str:
    """A Markdown table; the last column is each model's per-window cost relative to the first model."""
    head = ("| model | KiB | features/hop ms (p95) | features/window ms | inference ms (p95) | per window ms "
            "| RTF | cold start ms | peak RSS MiB | vs first |")
    lines = [head, "|" + "---|" * 10]
    base = results[0].per_window_ms if results else 1.0
    for r in results:
        lines.append(f"| {Path(r.model).name} | {r.size_kib:.0f} | {r.features_stream.median_ms:.3f} "
                     f"({r.features_stream.p95_ms:.3f}) | {r.features_window.median_ms:.3f} | {r.inference.median_ms:.3f} "
                     f"({r.inference.p95_ms:.3f}) | {r.per_window_ms:.3f} | {r.real_time_factor:.4f} | "
                     f"{r.cold_start_ms:.0f} | {r.peak_rss_mib:.0f} | {r.per_window_ms / base:.2f}x |")
    return "\n".join(lines)
