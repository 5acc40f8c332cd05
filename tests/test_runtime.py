"""The runtime with the real shipped model: what it carries, runtimes, delegates (real libraries), bench."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.cli import app
from edge.corpora import parse_ravdess
from edge.runtime import DEFAULT_MODEL, EdgeModel
from tests.support.checks import json_lines
from tests.support.data import ANGRY, DEMO

runner = CliRunner()


def test_default_model_is_shipped_and_self_describing():
    model = EdgeModel(DEFAULT_MODEL)
    assert len(model.labels) == 8 and "angry" in model.labels
    assert model.bundle.corpora, "the bundle credits its training corpora"
    assert len(DEMO) == 8 and {parse_ravdess(p).label for p in DEMO} == set(model.labels)


def test_missing_delegate_falls_back_to_cpu_with_one_line(tmp_path: Path):
    missing = tmp_path / "libnot_a_delegate.so"
    result = runner.invoke(app, ["classify", "--delegate", str(missing), str(ANGRY)])
    assert result.exit_code == 0, result.output
    assert "could not be loaded" in result.stderr and "running on CPU (XNNPACK)" in result.stderr
    gpu = runner.invoke(app, ["classify", "--delegate", "gpu", str(ANGRY)])
    assert gpu.exit_code == 0 and "libtensorflowlite_gpu_delegate.so" in gpu.stderr


def test_gpu_tries_litert_gpu_accelerator_and_says_why_it_refused():
    """The shipped (fused LSTM) model: LiteRT's GPU accelerator refuses its variable tensors on any
    machine, and the user is told how to export one it takes; the answer is the CPU's."""
    gpu = runner.invoke(app, ["classify", "--json", "--delegate", "gpu", str(ANGRY)])
    assert gpu.exit_code == 0, gpu.output
    assert "LiteRT's GPU accelerator cannot run it: it refuses the fused LSTM's state" in gpu.stderr
    assert "--layout unrolled" in gpu.stderr and "INFO:" not in gpu.stderr
    cpu = runner.invoke(app, ["classify", "--json", str(ANGRY)])
    assert json_lines(gpu.stdout) == json_lines(cpu.stdout)


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


@pytest.mark.host
def test_tf_lite_runtime_gives_the_same_answer_as_litert():
    pytest.importorskip("tensorflow")
    answers = [json_lines(runner.invoke(app, ["classify", "--json", "--runtime", name, str(ANGRY)]).stdout)[0]
               for name in ("ai-edge-litert", "tensorflow")]
    assert answers[0]["label"] == answers[1]["label"]
    assert abs(answers[0]["confidence"] - answers[1]["confidence"]) < 1e-4
    unknown = runner.invoke(app, ["classify", "--runtime", "onnx", str(ANGRY)])
    assert unknown.exit_code == 2 and "--runtime must be one of ai-edge-litert" in unknown.stderr


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
