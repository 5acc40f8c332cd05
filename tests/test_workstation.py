"""The workstation side: the TensorFlow build the Makefile installs, the device a run names."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)

ROOT = Path(__file__).resolve().parents[1]


def planned_install(tmp_path: Path, nvidia_smi: str | None, *make_args: str) -> str:
    """`make -n venv` for a fresh venv, with a fake `nvidia-smi` (a shell script body) on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if nvidia_smi is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{nvidia_smi}\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(["make", "-n", "venv", f"VENV={tmp_path / 'venv'}", *make_args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


GPU_LISTED = 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5e1c)"'
NO_DEVICE = 'echo "No devices were found"; exit 6'  # what nvidia-smi says with a driver and no GPU


@pytest.mark.parametrize("nvidia_smi, build", [(GPU_LISTED, "gpu"), (NO_DEVICE, "cpu"), (None, "cpu")],
                         ids=["gpu-listed", "driver-no-gpu", "no-nvidia-smi"])
def test_venv_installs_the_cuda_build_only_where_nvidia_smi_lists_a_gpu(tmp_path, nvidia_smi, build):
    plan = planned_install(tmp_path, nvidia_smi)
    assert f"install -q -e '.[train,{build},edge,dev]'" in plan, plan


def test_tf_overrides_the_detection_and_is_checked(tmp_path):
    forced, wrong = tmp_path / "forced", tmp_path / "wrong"
    forced.mkdir(), wrong.mkdir()
    assert "'.[train,cpu,edge,dev]'" in planned_install(forced, GPU_LISTED, "TF=cpu")
    assert "TF must be cpu or gpu, not 'tpu'" in planned_install(wrong, None, "TF=tpu")


def test_the_extras_pin_one_tensorflow_version_for_both_builds():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["cpu"] == ["tensorflow-cpu==2.21.*"] and extras["gpu"] == ["tensorflow[and-cuda]==2.21.*"]
    assert not any(spec.startswith("tensorflow") for spec in extras["train"])


def free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_localhost_train_one_model_and_only_the_chief_writes(ravdess_like, tmp_path):
    """MultiWorkerMirroredStrategy through TF_CONFIG, as on two machines: both processes end with the
    same weights (their digests), and only worker 0 (the chief) writes a run folder."""
    from tests.conftest import TINY_TRAIN_ARGS

    cluster = [f"localhost:{port}" for port in free_ports(2)]
    cli = Path(sys.executable).parent / "edge-ser"
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})
        args = [str(cli), "train", str(ravdess_like), "--runs-dir", str(tmp_path / f"runs{index}"), "--name", "mw",
                *TINY_TRAIN_ARGS, "--epochs", "3"]
        workers.append(subprocess.Popen(args, env={**os.environ, "TF_CONFIG": config}, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    try:
        logs = [worker.communicate(timeout=240)[0] for worker in workers]
    except subprocess.TimeoutExpired:
        for worker in workers:  # a worker whose peer died waits for it forever
            worker.kill()
        tails = [worker.communicate()[0][-3000:] for worker in workers]
        pytest.fail("the workers did not finish within 240 s:\n" + "\n--- worker 1:\n".join(tails))
    assert [worker.returncode for worker in workers] == [0, 0], logs
    digests = [re.search(r"trained on 2 workers \(MultiWorkerMirroredStrategy\), each CPU: weights sha256 (\w+)", log)
               for log in logs]
    assert all(digests) and digests[0][1] == digests[1][1], logs
    assert (tmp_path / "runs0" / "mw" / "model.keras").is_file() and not (tmp_path / "runs1").exists()
    bundle = json.loads((tmp_path / "runs0" / "mw" / "bundle.json").read_text())
    assert bundle["training_device"].startswith("2 workers (MultiWorkerMirroredStrategy)")
    assert "the chief evaluates and writes the run" in logs[1]


def test_a_malformed_tf_config_is_one_line_before_any_data_loads(ravdess_like, monkeypatch):
    from typer.testing import CliRunner

    from edge.cli import app

    monkeypatch.setenv("TF_CONFIG", "{not json")
    result = CliRunner().invoke(app, ["train", str(ravdess_like), "--epochs", "1"])
    assert result.exit_code == 2 and "TF_CONFIG is not JSON" in result.output and "Traceback" not in result.output
