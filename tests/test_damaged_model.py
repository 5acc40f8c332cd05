"""A damaged model is refused, not run: every .tflite edge-ser writes carries a digest of itself, loading checks
it, and a copy damaged anywhere (weights, header, bundle) or cut short is refused with one line, exit 1."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.bundle import DIGEST_KEY, ModelBundleError
from edge.bundle_json import METADATA_NAME, UNSTAMPED_DIGEST, read_bundle
from edge.cli import app
from edge.runtime import DEFAULT_MODEL, MODELS_DIR, SHIPPED_MODELS, TFLITE_RUNTIME_TWIN
from edge.tflite_metadata import read_metadata
from tests.support.data import ANGRY, PROJECT

runner = CliRunner()
DEVICE_PYTHON = PROJECT / ".venv-edge/bin/python"
PYTHON = str(DEVICE_PYTHON) if DEVICE_PYTHON.exists() else sys.executable  # the device install where there is one


def flipped(data: bytes, at: int, mask: int = 0x01) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:]


def largest_weights(data: bytes) -> tuple[int, int]:
    """(offset, length) in the file of the model's largest weight buffer."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(data, 0)
    bundle = {model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    length, index = max((model.Buffers(i).DataLength(), i) for i in range(model.BuffersLength()) if i not in bundle)
    weights = model.Buffers(index).DataAsNumpy().tobytes()
    assert data.count(weights) == 1
    return data.find(weights), length


def damaged_copies(model: Path) -> dict[str, bytes]:
    """One copy per kind of damage: a byte of the weights, of the flatbuffer's header and tables, of the bundle
    (a number that stays valid JSON, its syntax, the digest, the digest's name), and cuts."""
    data = model.read_bytes()
    weights_at, weights_length = largest_weights(data)
    bundle_at = data.find(b'{"' + DIGEST_KEY.encode() + b'": "sha256:')
    digit_at = data.find(b'"temperature": ', bundle_at) + len('"temperature": ')
    assert bundle_at > 0 and data[digit_at:digit_at + 1].isdigit()
    return {
        "weights, first byte": flipped(data, weights_at),
        "weights, middle byte": flipped(data, weights_at + weights_length // 2, 0x80),
        "weights, last byte": flipped(data, weights_at + weights_length - 1, 0xFF),
        "header: root table offset": flipped(data, 0),
        "header: file identifier": flipped(data, 5),
        "root table's vtable": flipped(data, 8, 0x10),
        "metadata entry's name": flipped(data, data.find(METADATA_NAME.encode()) + 3),
        "bundle: a digit of the temperature": flipped(data, digit_at),
        "bundle: a quote": flipped(data, bundle_at + 1),
        "bundle: a digit of the digest": flipped(data, bundle_at + len('{"digest": "sha256:') + 10),
        "bundle: the digest's name": flipped(data, bundle_at + 2, 0x20),
        "another metadata entry": flipped(data, data.find(b"min_runtime_version") + 2),
        "the file's last byte": flipped(data, len(data) - 1),
        "cut to half": data[: len(data) // 2],
        "last byte cut": data[:-1],
        "cut to 8 bytes": data[:8],
        "empty": b"",
        "a byte appended": data + b"\0",
    }


def classify_each(copies: list[Path]) -> list[tuple[int, str, str]]:
    """`edge-ser classify --model COPY` for each copy, in one fresh interpreter of the device install (a crash
    would end it with a signal): (exit code, stdout, stderr) per copy."""
    code = textwrap.dedent(f"""
        import json
        from typer.testing import CliRunner
        from edge.cli import app
        for copy in {[str(c) for c in copies]!r}:
            r = CliRunner().invoke(app, ["classify", "--vad", "none", "--json", "--model", copy, {str(ANGRY)!r}])
            print(json.dumps([r.exit_code, r.stdout, r.stderr]), flush=True)
    """)
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=300)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    return [tuple(json.loads(line)) for line in result.stdout.splitlines()]


def assert_refused_in_one_line(outcome: tuple[int, str, str]) -> None:
    exit_code, stdout, stderr = outcome
    assert exit_code == 1 and stdout == "", outcome
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr


def test_every_kind_of_damage_is_refused_with_one_line(tmp_path: Path):
    copies = damaged_copies(DEFAULT_MODEL)
    paths = []
    for i, damaged in enumerate(copies.values()):
        paths.append(tmp_path / f"copy{i}.tflite")
        paths[-1].write_bytes(damaged)
    outcomes = classify_each(paths)
    assert len(outcomes) == len(copies)
    for damage, outcome in zip(copies, outcomes):
        assert_refused_in_one_line(outcome)
        assert "is damaged" in outcome[2] or "TFLite" in outcome[2] or "bundle" in outcome[2], (damage, outcome)
    weights = [o for damage, o in zip(copies, outcomes) if damage.startswith("weights")]
    assert all("is damaged: its bytes do not match the digest" in o[2] for o in weights)


def test_the_console_script_refuses_a_damaged_copy_in_one_line(tmp_path: Path):
    """Through `python -m edge.cli` as a user runs it; `info` refuses it with the same line."""
    copy = tmp_path / "model.tflite"
    copy.write_bytes(damaged_copies(DEFAULT_MODEL)["weights, middle byte"])
    result = subprocess.run([PYTHON, "-m", "edge.cli", "classify", "--model", str(copy), str(ANGRY)],
                            capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert_refused_in_one_line((result.returncode, result.stdout, result.stderr))
    assert result.stderr.startswith(f"error: {copy} is damaged: ")
    info = runner.invoke(app, ["info", "--model", str(copy)])
    assert info.exit_code == 1 and info.stderr == result.stderr


def test_sixty_randomly_damaged_copies_are_all_refused_none_runs(tmp_path: Path):
    """One byte changed at a random place, sixty times: every copy is refused with one line, none answers,
    none crashes."""
    data = DEFAULT_MODEL.read_bytes()
    rng = np.random.default_rng(29)
    copies = []
    for i, (at, mask) in enumerate(zip(rng.integers(0, len(data), 60), rng.integers(1, 256, 60))):
        copies.append(tmp_path / f"copy{i}.tflite")
        copies[-1].write_bytes(flipped(data, int(at), int(mask)))
    outcomes = classify_each(copies)
    assert len(outcomes) == 60
    for outcome in outcomes:
        assert_refused_in_one_line(outcome)


def test_every_single_byte_damage_in_a_sample_of_a_thousand_is_refused(tmp_path: Path):
    """In-process (no interpreter is reached): a thousand random positions, every one refused by the bundle check."""
    data = DEFAULT_MODEL.read_bytes()
    rng = np.random.default_rng(7)
    copy = tmp_path / "model.tflite"
    for at in rng.integers(0, len(data), 1000):
        copy.write_bytes(flipped(data, int(at), int(rng.integers(1, 256))))
        with pytest.raises(ModelBundleError):
            read_bundle(copy)


@pytest.mark.parametrize("name", [f"{m}{twin}" for m in SHIPPED_MODELS for twin in ("", TFLITE_RUNTIME_TWIN)])
def test_every_shipped_model_carries_its_digest_and_matches_it(name: str):
    path = MODELS_DIR / f"{name}.tflite"
    data = path.read_bytes()
    bundle = read_bundle(path)
    assert bundle.digest is not None and bundle.digest.startswith("sha256:")
    stored = json.loads(read_metadata(data)[METADATA_NAME])
    assert list(stored)[0] == DIGEST_KEY == "digest"  # the first entry, so that a damaged name is still seen
    entry = f'"digest": "{bundle.digest}"'.encode()
    unstamped = data.replace(entry, f'"digest": "{UNSTAMPED_DIGEST}"'.encode())
    assert bundle.digest == "sha256:" + hashlib.sha256(unstamped).hexdigest()  # the definition, as docs/reliability.md has it


def test_a_model_from_before_digests_loads_unchecked_and_info_says_so(tmp_path: Path):
    """A bundle without a digest (what quantize wrote before): the same network, loaded, and `info` says no digest."""
    data = DEFAULT_MODEL.read_bytes()
    digest = read_bundle(DEFAULT_MODEL).digest
    entry = f'"digest": "{digest}", '.encode()
    legacy = tmp_path / "legacy.tflite"
    legacy.write_bytes(data.replace(entry, b" " * len(entry)))  # same length: the flatbuffer is unchanged around it
    assert DIGEST_KEY not in json.loads(read_metadata(legacy.read_bytes())[METADATA_NAME])
    info = runner.invoke(app, ["info", "--model", str(legacy)])
    assert info.exit_code == 0 and "digest: none (written before edge-ser recorded one" in info.stdout
    assert f"digest: {digest} (the file matches it)" in runner.invoke(app, ["info"]).stdout
    answers = [runner.invoke(app, ["classify", "--json", "--vad", "none", *model, str(ANGRY)]).stdout
               for model in (["--model", str(legacy)], [])]
    assert answers[0] == answers[1] and answers[0].startswith("{")


@pytest.mark.host
def test_quantize_s_writer_stamps_a_digest_that_writing_again_reproduces(tmp_path: Path):
    """convert.tflite.finish_flatbuffer (quantize's writer) stamps the digest; the same network and bundle give the
    same bytes, so the same digest."""
    from convert.tflite import finish_flatbuffer

    stored = json.loads(read_metadata(DEFAULT_MODEL.read_bytes())[METADATA_NAME])
    first = finish_flatbuffer(DEFAULT_MODEL.read_bytes(), {**stored, "licence": "changed"})
    assert finish_flatbuffer(DEFAULT_MODEL.read_bytes(), {**stored, "licence": "changed"}) == first
    path = tmp_path / "written.tflite"
    path.write_bytes(first)
    assert read_bundle(path).licence == "changed" and read_bundle(path).digest != read_bundle(DEFAULT_MODEL).digest


def test_adapt_s_writer_stamps_a_digest(tmp_path: Path):
    """edge.model_file.adapted_flatbuffer (adapt's writer, on the device) stamps the digest too."""
    from edge.model_file import adapted_flatbuffer

    stored = json.loads(read_metadata(DEFAULT_MODEL.read_bytes())[METADATA_NAME])
    path = tmp_path / "adapted.tflite"
    path.write_bytes(adapted_flatbuffer(DEFAULT_MODEL.read_bytes(), stored))
    assert read_bundle(path).digest not in (None, read_bundle(DEFAULT_MODEL).digest)
    path.write_bytes(flipped(path.read_bytes(), len(path.read_bytes()) // 2))
    with pytest.raises(ModelBundleError, match="is damaged"):
        read_bundle(path)
