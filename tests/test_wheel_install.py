"""The package as a user installs it: `python -m build` makes an sdist and a wheel (the wheel built from
the sdist), and both the wheel and `pip install '.[edge]'` from a checkout, NOT editable, give a fresh
virtual environment an `edge-ser` that runs the device verbs, with no TensorFlow.

Minutes on a cold pip cache (pip downloads the `edge` extra's packages), so these run under the `wheel`
marker: `make test-wheel`, which `make test` runs. The commands are the README's install lines."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.support.data import PROJECT

pytestmark = pytest.mark.wheel
INSTALL_TIMEOUT_S = 900  # a cold pip cache downloads the TFLite runtime and builds PyAudio
SENTENCE = "I can't believe you did that again. Please leave me alone, I am very tired."


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that would put the checkout or another venv on the path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def checkout_copy(dest: Path) -> Path:
    """What a clean checkout of this working tree holds: tracked and untracked-but-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = PROJECT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def fresh_venv(path: Path, *install: str, cwd: Path) -> Path:
    """`python3 -m venv PATH && PATH/bin/pip install INSTALL...`, run in `cwd`; returns PATH/bin."""
    run([sys.executable, "-m", "venv", str(path)], cwd=cwd)
    run([str(path / "bin" / "pip"), "install", *install], cwd=cwd, timeout=INSTALL_TIMEOUT_S)
    return path / "bin"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """`python -m build` in a clean copy of the checkout: the sdist, then the wheel built from it (isolated)."""
    pytest.importorskip("build", reason="`build` comes with the dev extra (make venv); a device install lacks it")
    checkout = checkout_copy(tmp_path_factory.mktemp("checkout-build"))
    run([sys.executable, "-m", "build"], cwd=checkout, timeout=INSTALL_TIMEOUT_S)
    return checkout / "dist"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Synthetic speech (espeak-ng, installed by `make sysdeps`), so the voice-activity detector finds speech."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make sysdeps)")
    path = tmp_path_factory.mktemp("clip") / "spoken.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SENTENCE], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def wheel_bin(dist: Path, tmp_path_factory) -> Path:
    (wheel,) = dist.glob("edge_ser-*-py3-none-any.whl")
    venv = tmp_path_factory.mktemp("wheel-install") / "edge-ser"
    return fresh_venv(venv, f"{wheel}[edge]", cwd=dist)


@pytest.fixture(scope="module")
def checkout_bin(tmp_path_factory) -> Path:
    checkout = checkout_copy(tmp_path_factory.mktemp("checkout-install"))
    venv = tmp_path_factory.mktemp("checkout-venv") / "edge-ser"
    return fresh_venv(venv, ".[edge]", cwd=checkout)


def test_sdist_and_wheel_carry_every_package_its_data_and_the_licence(dist: Path):
    (sdist,) = dist.glob("edge_ser-*.tar.gz")
    (wheel,) = dist.glob("edge_ser-*-py3-none-any.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    in_sdist = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    packages = [p for top in ("edge", "train", "convert") for p in (PROJECT / top).rglob("__init__.py")]
    data = [*(PROJECT / "edge" / "models").iterdir(), *(PROJECT / "train" / "checksums").glob("*.json.gz")]  # models, licences
    assert len(packages) >= 4 and len(data) >= 4
    for name in [str(p.relative_to(PROJECT)) for p in packages + data]:
        assert name in in_wheel and name in in_sdist, name
    assert {"LICENSE", "pyproject.toml", "README.md"} <= in_sdist
    licence = next(name for name in in_wheel if name.endswith(".dist-info/licenses/LICENSE"))
    assert "Apache License" in zipfile.ZipFile(wheel).read(licence).decode()
    assert not [name for name in in_wheel | in_sdist if name.startswith(("tests/", "benchmarks/", "assets/", "runs/"))]


def check_device_verbs(bin_dir: Path, clip: Path) -> None:
    """`edge-ser --help`, `info`, `classify CLIP` and `listen --source CLIP` from the installed package,
    run outside the checkout so nothing can be imported from it."""
    edge_ser, cwd = str(bin_dir / "edge-ser"), clip.parent
    assert {"classify", "listen", "info"} <= set(re.findall(r"\b(\w+)\b", run([edge_ser, "--help"], cwd).stdout))
    info = run([edge_ser, "info"], cwd).stdout
    model = re.search(r"^model: (\S+)", info, re.M).group(1)
    assert Path(model).name == "default.tflite" and Path(model).is_relative_to(bin_dir.parent), model
    labels = re.search(r"^labels: (.+)$", info, re.M).group(1).split(", ")
    assert "neutral" in labels
    rows = [line.split() for line in run([edge_ser, "classify", clip.name], cwd).stdout.splitlines()]
    (row,) = [r for r in rows if r and r[0] == clip.name]
    assert row[2] in labels, row
    windows = [line.split() for line in run([edge_ser, "listen", "--source", clip.name], cwd).stdout.splitlines()
               if re.match(r"\s*[\d.]+ s ", line)]
    assert any(w[2] in labels for w in windows), windows


def check_no_host_libraries(bin_dir: Path) -> None:
    for module in ("tensorflow", "librosa", "keras"):
        probe = subprocess.run([str(bin_dir / "python"), "-c", f"import {module}"], capture_output=True, env=clean_env())
        assert probe.returncode != 0, f"{module} is importable in the installed environment"
    installed = run([str(bin_dir / "pip"), "list", "--format", "freeze"], bin_dir).stdout.lower()
    assert not re.search(r"^(tensorflow|tensorflow-cpu|librosa)==", installed, re.M), installed


def test_the_wheel_installed_with_the_edge_extra_runs_the_device_verbs(wheel_bin: Path, clip: Path):
    check_no_host_libraries(wheel_bin)
    check_device_verbs(wheel_bin, clip)


def test_pip_install_of_a_checkout_with_the_edge_extra_runs_the_device_verbs(checkout_bin: Path, clip: Path):
    check_no_host_libraries(checkout_bin)
    check_device_verbs(checkout_bin, clip)
