"""Hostile input: every case is generated here, put in a batch between two good files, and
`edge-ser classify` must answer it (a label, "no speech" or one clear error line), never with a
traceback or a hang, still classify the good files, and exit 1 exactly when a file failed."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from tests.support.data import PROJECT
from tests.support.nonspeech import nonspeech_clips

GOOD = [PROJECT / "assets/demo/03-01-05-02-01-01-17.flac", PROJECT / "assets/demo/03-01-06-02-01-01-18.flac"]
EDGE_SER = [str(PROJECT / ".venv-edge/bin/edge-ser")] if (PROJECT / ".venv-edge/bin/edge-ser").exists() else \
    [sys.executable, "-m", "edge.cli"]
RATE = 16000


def speech(rate: int = RATE, seconds: float | None = None) -> np.ndarray:
    """A real speech clip (a demo clip) at `rate`, optionally cut or repeated to `seconds`."""
    from edge.audio import read_audio

    signal = read_audio(GOOD[0], rate)
    if seconds is not None:
        n = max(1, int(seconds * rate))
        signal = np.tile(signal, -(-n // signal.size))[:n]
    return signal


def write(path: Path, signal: np.ndarray, rate: int = RATE, subtype: str | None = None, fmt: str | None = None) -> Path:
    soundfile.write(str(path), signal, rate, subtype=subtype, format=fmt)
    return path


def patched_wav(path: Path, **fields: int) -> Path:
    """A good 16-bit WAV whose header then claims other values (offsets of the canonical 'fmt ' chunk)."""
    data = bytearray(write(path, speech(seconds=1.0), subtype="PCM_16").read_bytes())
    assert data[12:16] == b"fmt "
    offsets = {"channels": (22, "<H"), "rate": (24, "<I"), "byte_rate": (28, "<I"), "bits": (34, "<H"),
               "data_size": (40, "<I")}
    for name, value in fields.items():
        at, fmt = offsets[name]
        data[at: at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))
    return path


def float_wav(path: Path, values: Callable[[np.ndarray], np.ndarray], subtype: str = "FLOAT") -> Path:
    return write(path, values(speech(seconds=1.0).astype(np.float64)), subtype=subtype)


def with_nan(x: np.ndarray) -> np.ndarray:
    x[len(x) // 2] = np.nan
    return x


def with_inf(x: np.ndarray) -> np.ndarray:
    x[10] = -np.inf
    return x


OK, ERROR = "ok", "error"
# name -> (make the file in a folder, expected outcome)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    # every sample format soundfile writes
    **{f"wav {subtype}": ((lambda d, s=subtype: write(d / f"{s}.wav", speech(), subtype=s)), OK)
       for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM")},
    "flac 24-bit": (lambda d: write(d / "x.flac", speech(), subtype="PCM_24"), OK),
    "ogg vorbis": (lambda d: write(d / "x.ogg", speech(), subtype="VORBIS"), OK),
    "ogg opus 48 kHz": (lambda d: write(d / "x.opus", speech(48000), 48000, subtype="OPUS", fmt="OGG"), OK),
    "aiff": (lambda d: write(d / "x.aiff", speech(), subtype="PCM_16"), OK),
    "au": (lambda d: write(d / "x.au", speech(), subtype="PCM_16"), OK),
    "caf": (lambda d: write(d / "x.caf", speech(), subtype="PCM_16"), OK),
    "w64": (lambda d: write(d / "x.w64", speech(), subtype="PCM_16"), OK),
    "rf64": (lambda d: write(d / "x.rf64", speech(), subtype="PCM_16"), OK),
    # every length: 1 sample to 1 minute (1 hour: the memory test)
    **{f"{n} samples": ((lambda d, n=n: write(d / f"n{n}.wav", speech()[:n], subtype="PCM_16")), OK)
       for n in (1, 2, 399, 400, 1600, 32000)},
    "one minute": (lambda d: write(d / "minute.wav", speech(seconds=60), subtype="PCM_16"), OK),
    # rates from 8 kHz to 192 kHz
    **{f"{rate} Hz": ((lambda d, r=rate: write(d / f"r{r}.wav", speech(r), r, subtype="PCM_16")), OK)
       for rate in (8000, 11025, 22050, 44100, 48000, 96000, 192000)},
    # 1 to 8 channels
    **{f"{ch} channels": ((lambda d, c=ch: write(d / f"c{c}.wav", np.tile(speech()[:, None], (1, c)), subtype="PCM_16")), OK)
       for ch in (2, 3, 6, 8)},
    # non-finite and over-range floats
    "NaN sample": (lambda d: float_wav(d / "nan.wav", with_nan), ERROR),
    "Inf sample": (lambda d: float_wav(d / "inf.wav", with_inf, "DOUBLE"), ERROR),
    "samples of 1e30": (lambda d: float_wav(d / "huge.wav", lambda x: x * 1e30), OK),
    "samples of 3.0": (lambda d: float_wav(d / "loud.wav", lambda x: x * 3.0 / np.abs(x).max()), OK),
    "denormal floats": (lambda d: float_wav(d / "denormal.wav", lambda x: x * 1e-40), OK),
    "digital silence": (lambda d: write(d / "zeros.wav", np.zeros(RATE * 3), subtype="PCM_16"), OK),
    "full-scale square": (lambda d: write(d / "square.wav", np.sign(np.sin(np.arange(RATE * 3) / 7.0)), subtype="PCM_16"), OK),
    "white noise": (lambda d: write(d / "noise.wav", nonspeech_clips()[1][1], subtype="PCM_16"), OK),
    # headers that lie, are cut or are not there
    "header claims 2147483647 Hz": (lambda d: patched_wav(d / "fast.wav", rate=2_147_483_647, byte_rate=4_294_967_294), ERROR),
    "header claims 0 Hz": (lambda d: patched_wav(d / "zero-rate.wav", rate=0), ERROR),
    "header claims 1 Hz": (lambda d: patched_wav(d / "one-hz.wav", rate=1, byte_rate=2), ERROR),
    "header claims 0 channels": (lambda d: patched_wav(d / "no-channels.wav", channels=0), ERROR),
    "header claims 1000 channels": (lambda d: patched_wav(d / "many.wav", channels=1000), ERROR),
    "header claims 4 GB of data": (lambda d: patched_wav(d / "long.wav", data_size=0xFFFFFFF0), OK),
    "header claims 7 bits": (lambda d: patched_wav(d / "bits.wav", bits=7), OK),  # libsndfile reads it as 16-bit
    "truncated header": (lambda d: _cut(write(d / "cut.wav", speech(), subtype="PCM_16"), 30), ERROR),
    "truncated data": (lambda d: _cut(write(d / "cut-data.wav", speech(), subtype="PCM_16"), 5001), OK),
    "truncated flac": (lambda d: _cut(write(d / "cut.flac", speech(), subtype="PCM_16"), 3000), ERROR),  # "lost sync"
    "random bytes": (lambda d: _bytes(d / "random.wav", np.random.default_rng(0).bytes(5000)), ERROR),
    "text named .wav": (lambda d: _bytes(d / "notes.wav", b"this is not audio\n" * 20), ERROR),
    "empty file": (lambda d: _bytes(d / "empty.wav", b""), ERROR),
    "RIFF header only": (lambda d: _bytes(d / "riff.wav", b"RIFF\x24\x00\x00\x00WAVE"), ERROR),
    # odd paths
    "missing file": (lambda d: d / "missing.wav", ERROR),
    "/dev/null": (lambda d: Path("/dev/null"), ERROR),
    "broken symlink": (lambda d: _link(d / "broken.wav", d / "nowhere.wav"), ERROR),
    "symlink to a good file": (lambda d: _link(d / "link.wav", GOOD[1]), OK),
    "unicode name": (lambda d: write(d / "émotion 😀 ünïcode.wav", speech(), subtype="PCM_16"), OK),
    "newline in name": (lambda d: write(d / "two\nlines.wav", speech(), subtype="PCM_16"), OK),
    "name of 240 characters": (lambda d: write(d / ("x" * 236 + ".wav"), speech(), subtype="PCM_16"), OK),
    "name starting with a dash": (lambda d: write(d / "-rf.wav", speech(), subtype="PCM_16"), OK),
    "upper-case extension": (lambda d: write(d / "LOUD.WAV", speech(), subtype="PCM_16", fmt="WAV"), OK),
    "wav content named .flac": (lambda d: write(d / "wrong.flac", speech(), subtype="PCM_16", fmt="WAV"), OK),
}


def _cut(path: Path, keep: int) -> Path:
    path.write_bytes(path.read_bytes()[:keep])
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _link(path: Path, target: Path) -> Path:
    path.symlink_to(target)
    return path


def test_there_are_at_least_forty_generated_cases():
    assert len(CASES) >= 40
    assert {OK, ERROR} == {expected for _, expected in CASES.values()}


def run_classify(*args: str):
    from edge.cli import app

    return CliRunner().invoke(app, ["classify", "--json", *args])


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file_in_a_batch(tmp_path: Path, name: str):
    make, expected = CASES[name]
    hostile = make(tmp_path)
    result = run_classify(str(GOOD[0]), str(hostile), str(GOOD[1]))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["path"] for line in lines] == [str(GOOD[0]), str(hostile), str(GOOD[1])]
    assert "error" not in lines[0] and "error" not in lines[2]  # the good files around it are classified
    assert lines[0]["label"] and lines[2]["label"]
    if expected == OK:
        assert "error" not in lines[1], lines[1]
        assert result.exit_code == 0
    else:
        assert lines[1]["error"].startswith("cannot "), lines[1]
        assert "\n" not in lines[1]["error"]
        assert result.exit_code == 1
        assert "1 of 3 files could not be classified" in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_special_files_named_like_audio_never_block(tmp_path: Path, kind: str):
    """A FIFO named x.wav used to block classify forever; a folder named x.wav holds no audio."""
    special = tmp_path / "x.wav"
    os.mkfifo(special) if kind == "fifo" else special.mkdir()
    result = subprocess.run(EDGE_SER + ["classify", "--vad", "none", str(special), str(GOOD[0])], capture_output=True,
                            text=True, cwd=PROJECT, timeout=120)
    assert "Traceback" not in result.stderr
    assert GOOD[0].name in result.stdout  # the good file after it was classified
    if kind == "fifo":
        assert result.returncode == 1 and "not a regular file" in result.stderr
    else:
        assert result.returncode == 0  # a folder is expanded: this one holds no audio file


def test_reading_nan_names_the_sample(tmp_path: Path):
    from edge.audio import AudioReadError, read_audio

    path = float_wav(tmp_path / "nan.wav", with_nan)
    with pytest.raises(AudioReadError, match=r"sample \d+ is not a finite number"):
        read_audio(path, RATE)


def test_over_range_floats_are_clipped_to_full_scale(tmp_path: Path):
    from edge.audio import read_audio

    audio = read_audio(float_wav(tmp_path / "huge.wav", lambda x: x * 1e30), RATE)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


def test_loud_span_of_non_finite_power_is_none():
    """The root of the old crash: windowing.loud_span on the power of 1e30 samples (inf - inf = nan)."""
    from edge.windowing import loud_span, trim_silence

    assert loud_span(np.array([1.0, np.inf, np.nan])) is None
    signal = np.full(4000, np.float32(1e30))
    with np.errstate(over="ignore", invalid="ignore"):
        assert trim_silence(signal).size == signal.size


@pytest.mark.host
def test_training_skips_a_non_finite_file_and_goes_on(tmp_path: Path):
    from edge.discovery import Dataset, Utterance
    from train.datasets import load_audio

    good = write(tmp_path / "good.wav", speech(), subtype="PCM_16")
    bad = float_wav(tmp_path / "bad.wav", with_nan)
    absurd = patched_wav(tmp_path / "absurd.wav", rate=2_147_483_647, byte_rate=4_294_967_294)
    dataset = Dataset([Utterance(p, "angry", "s1", "folder") for p in (good, bad, absurd)])
    loaded = load_audio(dataset, RATE)
    assert [u.path for u in loaded.utterances] == [good]
    reasons = dict(loaded.skipped)
    assert "not a finite number" in reasons[bad] and "2147483647 Hz" in reasons[absurd]


@pytest.mark.host
def test_manifest_rows_with_nul_bytes_are_skipped(tmp_path: Path):
    from edge.discovery import discover_manifest

    write(tmp_path / "a.wav", speech(), subtype="PCM_16")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,angry\nb\x00.wav,sad\n,happy\n")
    dataset = discover_manifest(manifest)
    assert [u.path.name for u in dataset.utterances] == ["a.wav"]
    assert [why for _, why in dataset.skipped] == ["line 3: a NUL byte in path", "line 4: no path"]
