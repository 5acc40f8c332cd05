"""Peak memory of `classify` and `listen --source` on long recordings: it must not grow with length.

Writes 16 kHz WAV files of the given lengths (speech, pauses and noise, written a block at a time),
runs the edge install's `edge-ser` on each in a fresh process and reads that process's peak RSS
(getrusage of the waited child). Writes runs/bench/long_audio.md.

    .venv/bin/python -m benchmarks.long_audio [--minutes 10 60]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]

RATE = 16000
DEMO = PROJECT / "assets/demo/03-01-05-02-01-01-17.flac"
EDGE_SER = PROJECT / ".venv-edge/bin/edge-ser"


def write_long_recording(path: Path, minutes: float, seed: int = 0) -> Path:
    """Speech (a demo clip), a pause and a stretch of quiet noise, over and over, a block at a time."""
    import soundfile

    from edge.audio import read_audio

    speech = read_audio(DEMO, RATE)
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * RATE)
    with soundfile.SoundFile(str(path), "w", RATE, 1, subtype="PCM_16") as out:
        written = 0
        while written < total:
            pause = np.zeros(int(rng.uniform(0.5, 3.0) * RATE), dtype=np.float32)
            noise = (0.01 * rng.standard_normal(int(rng.uniform(0.5, 2.0) * RATE))).astype(np.float32)
            block = np.concatenate((speech, pause, noise))[: total - written]
            out.write(block)
            written += block.size
    return path


def peak_rss_mb(command: list[str]) -> tuple[float, float, int]:
    """(peak RSS of `command` in MB, wall seconds, exit code), measured in a fresh helper process so
    that RUSAGE_CHILDREN holds this command alone."""
    helper = ("import resource, subprocess, sys, time, json; t = time.monotonic(); "
              "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
              "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.monotonic() - t, code]))")
    out = subprocess.run([sys.executable, "-c", helper, *command], capture_output=True, text=True, check=True)
    kib, seconds, code = json.loads(out.stdout)
    return kib / 1024, seconds, code


def commands(path: Path) -> dict[str, list[str]]:
    cli = str(EDGE_SER)
    return {"classify": [cli, "classify", str(path)],
            "classify --trim window": [cli, "classify", "--trim", "window", str(path)],
            "listen --source": [cli, "listen", "--source", str(path), "--json"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--folder", type=Path, default=PROJECT / "runs" / "bench")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for minutes in args.minutes:
        path = write_long_recording(args.folder / f"long-{minutes:g}min.wav", minutes)
        for name, command in commands(path).items():
            rss, seconds, code = peak_rss_mb(command)
            rows.append((name, minutes, rss, seconds, code))
            print(f"{name:<24} {minutes:5g} min  peak RSS {rss:6.1f} MB  {seconds:6.1f} s  exit {code}", flush=True)
        path.unlink()
    lines = ["| command | recording | peak RSS | wall time | exit |", "|---|---|---|---|---|"]
    lines += [f"| `{n}` | {m:g} min | {r:.1f} MB | {s:.0f} s | {c} |" for n, m, r, s, c in rows]
    (args.folder / "long_audio.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
