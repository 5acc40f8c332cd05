"""The device install (`make edge-venv`: `pip install .[edge]` only) is small, has no TensorFlow, and works."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.data import PROJECT

EDGE_VENV = PROJECT / ".venv-edge"
SIZE_LIMIT_MB = 250  # the edge-only environment stays small: no TensorFlow, no librosa, nothing a device does not run


@pytest.fixture(scope="module")
def edge_python() -> Path:
    python = EDGE_VENV / "bin" / "python"
    if not (EDGE_VENV / ".installed").is_file():
        pytest.skip("no edge-only environment: run `make edge-venv` (make test builds it)")
    return python


def test_edge_environment_is_small_and_has_no_host_libraries(edge_python: Path):
    size_kb = int(subprocess.run(["du", "-sk", str(EDGE_VENV)], capture_output=True, text=True).stdout.split()[0])
    assert size_kb / 1024 <= SIZE_LIMIT_MB, f"{size_kb / 1024:.0f} MB"
    for module in ("tensorflow", "librosa", "sklearn", "keras", "ctranslate2"):
        probe = subprocess.run([str(edge_python), "-c", f"import {module}"], capture_output=True)
        assert probe.returncode != 0, f"{module} is importable in the edge environment"


def test_the_device_install_carries_neither_the_teacher_nor_its_runtime():
    """The `edge` extra and the core requirements name neither ctranslate2 nor the teacher's model packages
    (docs/teacher.md: the teacher stays on the host)."""
    import tomllib

    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    device = " ".join(project["dependencies"] + project["optional-dependencies"]["edge"]).lower()
    for name in ("ctranslate2", "whisper", "teacher"):
        assert name not in device
    assert any("ctranslate2" in r for r in project["optional-dependencies"]["teacher"])


def test_edge_environment_classifies_like_the_host(edge_python: Path):
    clip = PROJECT / "assets" / "demo" / "03-01-07-02-01-01-19.flac"
    results = []
    for python in (edge_python, PROJECT / ".venv" / "bin" / "python"):
        if not python.is_file():
            pytest.skip(f"{python} missing")
        output = subprocess.run([str(python), "-m", "edge.cli", "classify", "--json", str(clip)],
                                capture_output=True, text=True, cwd=PROJECT, check=True)
        results.append(json.loads(output.stdout))
    assert results[0]["label"] == results[1]["label"]
    assert abs(results[0]["confidence"] - results[1]["confidence"]) < 1e-4


def test_tflite_runtime_gets_the_int8_default_and_agrees_with_litert():
    """tflite-runtime 2.14 cannot load dynamic-range models from TF 2.21, so it is given the int8 twin
    (float16 would be 167 KB, over the 150 KB a shipped model may weigh)."""
    python = PROJECT / ".venv-tflite-runtime" / "bin" / "python"
    if not python.is_file() or subprocess.run([str(python), "-c", "import tflite_runtime"]).returncode:
        pytest.skip("no tflite-runtime environment (make tflite-runtime-env)")
    code = ("import json, numpy as np; from edge.audio import read_audio; from edge.classify import classify_signal; "
            "from edge.runtime import EdgeModel, model_or_default; m = EdgeModel(model_or_default(None)); "
            "r = classify_signal(m, read_audio('assets/demo/03-01-06-02-01-01-18.flac', 16000)); "
            "print(json.dumps([m.runtime.name, m.path.name, r.label, r.confidence]))")
    output = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=PROJECT,
                            env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"})
    if output.returncode and "No module named" in output.stderr:
        pytest.skip(f"tflite-runtime environment lacks an edge dependency: {output.stderr.strip().splitlines()[-1]}")
    assert output.returncode == 0, output.stderr
    runtime, name, label, confidence = json.loads(output.stdout)
    assert (runtime, name) == ("tflite-runtime", "default-int8.tflite")
    from edge.classify import classify_file
    from edge.runtime import DEFAULT_MODEL, EdgeModel
    reference = classify_file(EdgeModel(DEFAULT_MODEL), PROJECT / "assets/demo/03-01-06-02-01-01-18.flac")
    assert label == reference.label and abs(confidence - reference.confidence) < 0.05  # int8 vs dynamic-range
