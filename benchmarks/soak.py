"""`make soak`: `edge-ser listen` (the edge install) on the PulseAudio virtual microphone for a long time.

Plays mixed speech, silence and non-speech (noise, hum, music-like tones) into the microphone at real
time, samples the listener's RSS and CPU once a minute, counts windows and labels, then stops it with
SIGTERM and reads its summary (input overflows, dropped chunks). Fails (exit 1) when RSS grew by more
than 2 MB after the warm-up (the first 5 minutes, or the first fifth of a shorter run), when the
listener died or printed a traceback, or when it did not end with its summary and exit 0.
Writes runs/soak/soak.json and soak.md.

    .venv/bin/python -m benchmarks.soak --minutes 60 [--edge-python .venv-edge/bin/python]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tests.support.nonspeech import nonspeech_clips
from tests.support.virtual_mic import VirtualMic, pulseaudio_available

PROJECT = Path(__file__).resolve().parents[1]

RATE = 16000
MAX_RSS_GROWTH_MB = 2.0  # after the warm-up, a listener's memory must not grow with time: allow this much noise
WARM_UP_MINUTES = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    minute: float
    rss_mb: float
    cpu_percent: float  # of one core, over the last interval


@dataclass
class SoakReport:
    minutes: float
    samples: list[Sample] = field(default_factory=list)
    windows: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    summary: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def growth_mb(self) -> float:
        warm = min(WARM_UP_MINUTES, self.minutes / 5)
        after = [s.rss_mb for s in self.samples if s.minute >= warm]
        return max(after) - after[0] if len(after) > 1 else 0.0


def mixed_audio(seed: int = 0) -> np.ndarray:
    """About 3 minutes of int16: demo speech, silences and non-speech, shuffled (looped by the player)."""
    import soundfile

    rng = np.random.default_rng(seed)
    speech = [soundfile.read(str(p), dtype="float32")[0] for p in sorted((PROJECT / "assets/demo").glob("*.flac"))]
    noise = [signal for _, signal in nonspeech_clips(seconds=3.0, seed=seed)]
    pieces = speech * 3 + noise[::3] + [np.zeros(int(rng.uniform(1, 4) * RATE), np.float32) for _ in range(8)]
    order = rng.permutation(len(pieces))
    mix = np.concatenate([pieces[i] for i in order])
    return np.clip(np.round(mix * 32767), -32768, 32767).astype(np.int16)


def play(mic: VirtualMic, audio: np.ndarray, stop: threading.Event) -> None:
    """Write the audio into the microphone at real time, in 50 ms pieces, looping, until `stop`."""
    step, start, written = RATE // 20, time.monotonic(), 0
    while not stop.is_set():
        offset = written % audio.size
        piece = audio[offset: offset + step]
        try:
            mic.write(piece)
        except OSError:
            return
        written += piece.size
        time.sleep(max(0.0, start + written / RATE - time.monotonic()))


def process_usage(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds so far) of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss_kb / 1024, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def soak(edge_python: str, minutes: float, interval: float = 60.0) -> SoakReport:
    report = SoakReport(minutes)
    labels: Counter = Counter()
    # the sound server may still be writing its runtime files while it exits: cleanup errors are not ours
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, VirtualMic(Path(tmp), RATE) as mic:
        listener = subprocess.Popen([edge_python, "-m", "edge.cli", "listen", "--json"], env=mic.env, cwd=PROJECT,
                                    text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stderr: list[str] = []
        threading.Thread(target=lambda: stderr.extend(listener.stderr), daemon=True).start()

        def count() -> None:
            for line in listener.stdout:
                if line.startswith("{"):
                    labels[json.loads(line)["label"]] += 1
        threading.Thread(target=count, daemon=True).start()
        stop = threading.Event()
        threading.Thread(target=play, args=(mic, mixed_audio(), stop), daemon=True).start()
        start, last_cpu, last_at = time.monotonic(), 0.0, time.monotonic()
        while time.monotonic() - start < minutes * 60:
            time.sleep(min(interval, max(0.0, start + minutes * 60 - time.monotonic())) or 0.01)
            if listener.poll() is not None:
                report.problems.append(f"listen exited early with {listener.returncode}")
                break
            rss, cpu = process_usage(listener.pid)
            now = time.monotonic()
            cpu_percent = 100 * (cpu - last_cpu) / (now - last_at)
            report.samples.append(Sample(round((now - start) / 60, 2), round(rss, 2), round(cpu_percent, 2)))
            print(f"{report.samples[-1]}  windows {sum(labels.values())}", flush=True)
            last_cpu, last_at = cpu, now
        if listener.poll() is None:
            listener.send_signal(signal.SIGTERM)
        report.exit_code = listener.wait(timeout=60)
        stop.set()
        time.sleep(0.5)
    report.windows, report.labels = sum(labels.values()), dict(labels)
    report.summary = next((line.strip() for line in stderr if line.startswith("listened to")), "")
    text = "".join(stderr)
    if "Traceback" in text:
        report.problems.append("a traceback on stderr")
    if report.exit_code != 0:
        report.problems.append(f"exit code {report.exit_code}")
    if "stopped by SIGTERM" not in report.summary:
        report.problems.append("no summary ending 'stopped by SIGTERM'")
    if report.growth_mb > MAX_RSS_GROWTH_MB:
        report.problems.append(f"RSS grew {report.growth_mb:.1f} MB after the warm-up")
    return report


def markdown(report: SoakReport) -> str:
    cpu = [s.cpu_percent for s in report.samples]
    rss = (f"- RSS: {report.samples[0].rss_mb:.1f} MB after the first minute, {report.samples[-1].rss_mb:.1f} MB at "
           f"the end; growth after the warm-up **{report.growth_mb:.2f} MB** (limit {MAX_RSS_GROWTH_MB:g})"
           if report.samples else "- no samples")
    lines = [f"# soak: {report.minutes:g} min of `edge-ser listen` on the virtual microphone", "", rss,
             f"- CPU: mean {np.mean(cpu):.2f} %, max {np.max(cpu):.2f} % of one core" if cpu else "",
             f"- windows: {report.windows}; labels: " + ", ".join(f"{k} {v}" for k, v in sorted(report.labels.items())),
             f"- summary: {report.summary}", f"- exit code: {report.exit_code}",
             f"- problems: {'; '.join(report.problems) or 'none'}", "", "| minute | RSS MB | CPU % of a core |", "|---|---|---|"]
    lines += [f"| {s.minute:g} | {s.rss_mb:.2f} | {s.cpu_percent:.2f} |" for s in report.samples]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=60.0, help="Seconds between samples.")
    parser.add_argument("--edge-python", default=str(PROJECT / ".venv-edge/bin/python"))
    parser.add_argument("--out", type=Path, default=PROJECT / "runs" / "soak")
    args = parser.parse_args()
    if not pulseaudio_available():
        print("soak needs PulseAudio (make sysdeps)", file=sys.stderr)
        return 1
    report = soak(args.edge_python, args.minutes, args.interval)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(dict(asdict(report), growth_mb=report.growth_mb), indent=2))
    (args.out / "soak.md").write_text(markdown(report))
    print(markdown(report))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
