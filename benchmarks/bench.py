"""`make bench`: edge-ser's figures as ratios against peers measured in the same run.

1. Model cost (`edge-ser bench`, run in the edge-only environment): the shipped model, and the
   other conversion modes of the run it came from when that run folder exists.
2. Features for one 2 s window: ours (whole window; one 0.5 s hop streamed) against librosa and
   python_speech_features computing the same log-mel frames.
3. The voice-activity detector per 0.5 s hop, every Silero backend installed in the edge or the host
   environment (benchmarks/vad_backends.py), against the shipped one and our streamed features for the hop.
4. What a user pays: `edge-ser classify one.wav` in a fresh process (wall time, peak RSS) with the
   default VAD, against --vad none and a bare interpreter importing numpy; `listen`'s CPU per hop
   with the VAD against --vad none.
5. `edge-ser listen` CPU over real-time audio from the PulseAudio virtual microphone, against a bare
   PyAudio capture of the same microphone (the floor any Python listener pays) and against
   `listen --vad none` (what the detector adds).
6. The edge-only environment's size against the host environment's.
7. What checking a model's digest adds to loading it (the check alone) against reading its bundle without the
   check and against loading the model into the interpreter.

Writes runs/bench/bench.json and bench.md, and prints the Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edge.bench import stream_feature_times, time_calls
from edge.features import FeatureParams, features_for_window

PROJECT = Path(__file__).resolve().parents[1]

CLIP = PROJECT / "assets" / "demo" / "03-01-05-02-01-01-17.flac"
BARE_CAPTURE = """
import sys, time, pyaudio, queue
q = queue.Queue()
pa = pyaudio.PyAudio()
s = pa.open(format=pyaudio.paInt16, channels=1, rate=16000, input=True, frames_per_buffer=1024,
            stream_callback=lambda d, n, t, st: (q.put(d), (None, pyaudio.paContinue))[1])
print("listening:", flush=True, file=sys.stderr)
got = 0
while got < float(sys.argv[1]) * 16000:
    got += len(q.get()) // 2
"""


def median_ms(function, repeats: int) -> float:
    return float(np.median(time_calls(function, repeats)) * 1e3)


def model_section(edge_python: str, repeats: int) -> list[dict]:
    from edge.runtime import DEFAULT_MODEL, MODELS_DIR

    run = PROJECT / "runs" / "default-model"  # made by `make default-model`
    peers = [MODELS_DIR / "open.tflite", MODELS_DIR / "default-int8.tflite"]
    peers += [run / f"model-{mode}.tflite" for mode in ("float32", "dynamic", "int8")]
    models = [str(DEFAULT_MODEL)] + [str(p) for p in peers if p.is_file()]
    model_options = [option for model in models for option in ("--model", model)]
    output = subprocess.run([edge_python, "-m", "edge.cli", "bench", "--json", "--repeats", str(repeats), *model_options],
                            capture_output=True, text=True, cwd=PROJECT, check=True)
    return json.loads(output.stdout)


def feature_section(repeats: int) -> dict:
    import librosa
    import python_speech_features as psf

    params = FeatureParams()
    window = (np.random.default_rng(0).standard_normal(params.window_samples) * 0.1).astype(np.float32)
    signal = (np.random.default_rng(1).standard_normal(params.window_samples * 3) * 0.1).astype(np.float32)

    def with_librosa() -> None:
        mel = librosa.feature.melspectrogram(y=librosa.effects.preemphasis(window, coef=0.97), sr=16000, n_fft=512,
                                             win_length=400, hop_length=160, center=False, n_mels=40, fmin=20,
                                             fmax=8000, htk=True, norm=None, window="hann")
        np.log(mel + 1e-6)

    def with_psf() -> None:
        psf.logfbank(window, samplerate=16000, winlen=0.025, winstep=0.01, nfilt=40, nfft=512, lowfreq=20,
                     highfreq=8000, preemph=0.97)

    figures = {"ours_window_ms": median_ms(lambda: features_for_window(window, params), repeats),
               "ours_stream_hop_ms": float(np.median(stream_feature_times(params, signal, params.sample_rate // 2,
                                                                          repeats)) * 1e3),
               "librosa_window_ms": median_ms(with_librosa, repeats),
               "python_speech_features_window_ms": median_ms(with_psf, repeats)}
    figures["ours_vs_librosa"] = figures["ours_window_ms"] / figures["librosa_window_ms"]
    figures["ours_vs_python_speech_features"] = figures["ours_window_ms"] / figures["python_speech_features_window_ms"]
    figures["stream_hop_vs_librosa_window"] = figures["ours_stream_hop_ms"] / figures["librosa_window_ms"]
    return figures


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a live process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(command: list[str], mic, seconds: float, audio: np.ndarray) -> float:
    """CPU time (user + system) a process spends while `seconds` of audio play into the mic at real
    time, from the moment it says "listening:" (start-up, i.e. imports and model loading, is the cold
    start `edge-ser bench` reports, not a per-second cost)."""
    process = subprocess.Popen(command, env=mic.env, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    for line in process.stderr:
        if "listening:" in line:
            break
    started_cpu = process_cpu_seconds(process.pid)
    threading.Thread(target=lambda: [line for line in process.stderr], daemon=True).start()
    start = time.monotonic()
    step = mic.rate // 20  # 50 ms writes, paced at real time
    for i, offset in enumerate(range(0, int(seconds * mic.rate) + 5 * mic.rate, step)):
        chunk = audio[offset % audio.size: offset % audio.size + step]
        mic.write(chunk)
        time.sleep(max(0.0, start + (i + 1) * step / mic.rate - time.monotonic()))
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # reaps it once it is done; rusage is its own
        if pid:
            break
    else:
        raise RuntimeError(f"{command[:3]} did not finish after {seconds} s of audio")
    process.returncode = status
    if status:
        raise RuntimeError(f"{command[:3]} exited with status {status}")
    return usage.ru_utime + usage.ru_stime - started_cpu


def listen_section(edge_python: str, seconds: float) -> dict:
    import soundfile

    from tests.support.virtual_mic import VirtualMic, pulseaudio_available

    if not pulseaudio_available():
        return {"skipped": "PulseAudio not installed"}
    speech, _ = soundfile.read(CLIP, dtype="int16")
    audio = np.concatenate([speech, np.zeros(8000, np.int16)])  # speech with short pauses, looped
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        with VirtualMic(Path(tmp) / "listen", 16000) as mic:
            listen = cpu_seconds_of([edge_python, "-m", "edge.cli", "listen", "--json", "--duration", str(seconds)],
                                    mic, seconds, audio)
        with VirtualMic(Path(tmp) / "novad", 16000) as mic:
            no_vad = cpu_seconds_of([edge_python, "-m", "edge.cli", "listen", "--json", "--vad", "none", "--duration",
                                     str(seconds)], mic, seconds, audio)
        with VirtualMic(Path(tmp) / "bare", 16000) as mic:
            bare = cpu_seconds_of([edge_python, "-c", BARE_CAPTURE, str(seconds)], mic, seconds, audio)
    return {"audio_seconds": seconds, "listen_cpu_seconds": listen, "listen_percent_of_one_core": 100 * listen / seconds,
            "listen_no_vad_percent_of_one_core": 100 * no_vad / seconds, "listen_vs_no_vad": listen / no_vad,
            "bare_capture_cpu_seconds": bare, "bare_percent_of_one_core": 100 * bare / seconds,
            "listen_vs_bare_capture": listen / bare if bare else None}


def vad_section(pythons: list[str], hops: int) -> dict:
    """CPU ms per 0.5 s hop of every Silero backend installed in these environments (benchmarks/vad_backends.py),
    each from the first environment that has it, and our streamed features for the hop (the peer)."""
    figures: dict = {}
    for python in pythons:
        out = subprocess.run([python, "-m", "benchmarks.vad_backends", "--hops", str(hops)], capture_output=True, text=True,
                             cwd=PROJECT)
        if out.returncode == 0:
            for name, ms in json.loads(out.stdout).items():
                if ms is not None and name not in figures:
                    figures[name] = ms
    return figures


HOP_COST = """
import json, sys, time
import numpy as np, soundfile
from edge.runtime import DEFAULT_MODEL, EdgeModel
from edge.stream import StreamClassifier
from edge.vad import load_detector
speech, _ = soundfile.read(sys.argv[1], dtype="int16")
audio = np.tile(np.concatenate([speech, np.zeros(8000, np.int16)]), int(sys.argv[2]))
hops = [audio[i: i + 8000] for i in range(0, audio.size - 7999, 8000)]
out = {}
for vad in ("silero", "none"):
    classifier = StreamClassifier(EdgeModel(DEFAULT_MODEL), 16000, detector=load_detector(vad))
    for hop in hops[:4]:
        classifier.push(hop)
    start = time.process_time()
    for hop in hops[4:]:
        classifier.push(hop)
    out[vad] = 1000 * (time.process_time() - start) / len(hops[4:])
print(json.dumps(out))
"""


# Runs a command and reports its own rusage. A small launcher, because a child forked from this large
# process would report this process's memory as its peak RSS (Linux keeps the high-water mark across exec).
RUSAGE_OF = """
import json, os, subprocess, sys, time
start = time.monotonic()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"status": status, "wall_s": time.monotonic() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mib": usage.ru_maxrss / 1024}))
"""


def run_once(launcher: str, command: list[str]) -> dict:
    """Wall and CPU seconds and peak RSS MiB of one run of `command` (which must succeed), launched by `launcher`."""
    figures = json.loads(subprocess.run([launcher, "-c", RUSAGE_OF, *command], capture_output=True, text=True,
                                        cwd=PROJECT, check=True).stdout)
    if figures["status"]:
        raise RuntimeError(f"{' '.join(command[:3])} exited with status {figures['status']}")
    return figures


def user_section(edge_python: str, runs: int) -> dict:
    """What a user pays: `edge-ser classify` on one file in a fresh process (the edge install's own command),
    with the default VAD and with --vad none, against a bare interpreter importing numpy; and the CPU
    `listen` spends per 0.5 s hop with and without the VAD (features, VAD, trimming, model, calibration)."""
    edge_ser = str(Path(edge_python).with_name("edge-ser"))
    commands = {"classify": [edge_ser, "classify", str(CLIP)],
                "classify_no_vad": [edge_ser, "classify", "--vad", "none", str(CLIP)],
                "python_numpy": [edge_python, "-c", "import numpy"]}
    samples: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so that a busy moment hits all three alike
        for name, command in commands.items():
            samples[name].append(run_once(edge_python, command))
    figures: dict = {"runs": runs}
    for name, runs_of in samples.items():
        figures[f"{name}_ms"] = 1e3 * float(np.median([r["wall_s"] for r in runs_of]))
        figures[f"{name}_cpu_ms"] = 1e3 * float(np.median([r["cpu_s"] for r in runs_of]))
        figures[f"{name}_peak_rss_mib"] = float(np.median([r["peak_rss_mib"] for r in runs_of]))
    hop = subprocess.run([edge_python, "-c", HOP_COST, str(CLIP), "15"], capture_output=True, text=True, cwd=PROJECT,
                         check=True)
    per_hop = json.loads(hop.stdout)
    figures.update({"hop_ms_with_vad": per_hop["silero"], "hop_ms_no_vad": per_hop["none"]})
    return figures


def size_section(edge_python: str) -> dict:
    def megabytes(path: Path) -> float:
        return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0]) / 1024

    edge_env = Path(edge_python).parents[1]
    has_tf = subprocess.run([edge_python, "-c", "import tensorflow"], capture_output=True).returncode == 0
    host = megabytes(PROJECT / ".venv") if (PROJECT / ".venv").is_dir() else None
    edge = megabytes(edge_env)
    return {"edge_env_mb": edge, "edge_env_has_tensorflow": has_tf, "host_env_mb": host,
            "edge_vs_host": edge / host if host else None}


def user_markdown(user: dict) -> list[str]:
    def row(label: str, key: str) -> str:
        ratios = [user[f"{key}_{what}"] / user[f"classify_no_vad_{what}"] for what in ("cpu_ms", "peak_rss_mib")]
        ratios.append(user[f"{key}_cpu_ms"] / user["python_numpy_cpu_ms"])
        return (f"| {label} | {user[f'{key}_ms']:.0f} | {user[f'{key}_cpu_ms']:.0f} | {user[f'{key}_peak_rss_mib']:.0f} | "
                + " | ".join(f"{r:.2f}" for r in ratios) + " |")

    return ["## What a user pays: `edge-ser classify one.wav`, and `listen` per hop", "",
            f"Fresh processes of the edge install, median of {user['runs']} runs each, interleaved:", "",
            "| command | wall ms | CPU ms | peak RSS MiB | CPU / --vad none | RSS / --vad none | CPU / python + numpy |",
            "|---|---|---|---|---|---|---|",
            row("**edge-ser classify one.wav**", "classify"),
            row("edge-ser classify --vad none one.wav (peer)", "classify_no_vad"),
            row("python -c 'import numpy' (peer)", "python_numpy"), "",
            "- `listen` per 0.5 s hop (CPU; features, VAD, window trim, model, calibration): "
            f"**{user['hop_ms_with_vad']:.2f} ms** with the VAD; {user['hop_ms_no_vad']:.2f} ms with --vad none (peer); "
            f"ratio {user['hop_ms_with_vad'] / user['hop_ms_no_vad']:.2f}", ""]


def vad_markdown(vad: dict) -> list[str]:
    from benchmarks.vad_backends import SHIPPED

    shipped = vad.get(SHIPPED)
    lines = ["## Voice-activity detector per 0.5 s hop (16 frames of 32 ms), every Silero backend", "",
             "| backend | CPU ms per hop | ratio to the shipped .tflite | ratio to our streamed features for the hop |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {ms:.3f} | {ms / shipped:.2f} | {ms / vad['features_hop_ms']:.2f} |" if shipped else
              f"| {name} | {ms:.3f} | - | {ms / vad['features_hop_ms']:.2f} |"
              for name, ms in vad.items() if name != "features_hop_ms"]
    lines += [f"| (peer) edge-ser features, one hop | {vad['features_hop_ms']:.3f} | - | 1.00 |", "",
              "The shipped .tflite is what both x86-64 and aarch64 run: the aarch64 path / the x86 path = 1.00 by "
              "construction.", ""]
    return lines


def digest_section(repeats: int) -> dict:
    """Checking the shipped model's digest (SHA-256 of the file with the digest's own digits zeroed) against the
    rest of what loading it costs, each the median of `repeats` calls in this process."""
    from edge.bundle import DIGEST_KEY
    from edge.bundle_json import METADATA_NAME, check_digest, read_bundle
    from edge.runtime import DEFAULT_MODEL, EdgeModel
    from edge.tflite_metadata import read_metadata

    data = DEFAULT_MODEL.read_bytes()
    bundle_json = read_metadata(data)[METADATA_NAME]
    digest = json.loads(bundle_json)[DIGEST_KEY]
    figures = {"model_kib": len(data) / 1024,
               "check_ms": median_ms(lambda: check_digest(data, bundle_json, digest, DEFAULT_MODEL), repeats),
               "read_bundle_ms": median_ms(lambda: read_bundle(DEFAULT_MODEL), repeats),
               "load_model_ms": median_ms(lambda: EdgeModel(DEFAULT_MODEL), max(5, repeats // 10))}
    figures["check_vs_read_bundle"] = figures["check_ms"] / figures["read_bundle_ms"]
    figures["check_vs_load_model"] = figures["check_ms"] / figures["load_model_ms"]
    return figures


def digest_markdown(digest: dict) -> list[str]:
    return ["## What checking a model's digest adds to loading it", "",
            f"- the check ({digest['model_kib']:.0f} KiB model): **{digest['check_ms']:.3f} ms**",
            f"- reading its bundle, the check included (peer): {digest['read_bundle_ms']:.3f} ms; "
            f"check / read = {digest['check_vs_read_bundle']:.2f}",
            f"- loading the model into the interpreter, bundle included (peer): {digest['load_model_ms']:.2f} ms; "
            f"check / load = {digest['check_vs_load_model']:.3f}", ""]


def markdown(report: dict) -> str:
    lines = ["# edge-ser benchmark", "", "## Model cost per window (one thread, CPU)", ""]
    from edge.bench import BenchResult, bench_table

    results = [BenchResult.from_dict(r) for r in report["models"]]
    lines += [bench_table(results), ""]
    f = report["features"]
    lines += ["## Features for one 2 s window (40 log-mel bands)", "",
              "| implementation | ms | ratio to librosa |", "|---|---|---|",
              f"| edge-ser, whole window | {f['ours_window_ms']:.3f} | {f['ours_vs_librosa']:.2f} |",
              f"| edge-ser, one 0.5 s hop streamed (what listen pays) | {f['ours_stream_hop_ms']:.3f} | "
              f"{f['stream_hop_vs_librosa_window']:.2f} |",
              f"| librosa | {f['librosa_window_ms']:.3f} | 1.00 |",
              f"| python_speech_features | {f['python_speech_features_window_ms']:.3f} | "
              f"{f['python_speech_features_window_ms'] / f['librosa_window_ms']:.2f} |", ""]
    lines += user_markdown(report["user"]) + vad_markdown(report["vad"]) + digest_markdown(report["digest"])
    listen = report["listen"]
    if "skipped" not in listen:
        lines += ["## listen CPU over real-time audio from the virtual microphone", "",
                  f"- edge-ser listen: {listen['listen_cpu_seconds']:.2f} s CPU for {listen['audio_seconds']:.0f} s of "
                  f"audio = **{listen['listen_percent_of_one_core']:.2f} % of one core**",
                  f"- listen --vad none (peer): {listen['listen_no_vad_percent_of_one_core']:.2f} % of one core; "
                  f"listen / listen --vad none = {listen['listen_vs_no_vad']:.2f}",
                  f"- bare PyAudio capture (peer): {listen['bare_percent_of_one_core']:.2f} % of one core; "
                  f"listen / bare = {listen['listen_vs_bare_capture']:.2f}", ""]
    size = report["size"]
    lines += ["## Environment size", "",
              f"- edge-only environment: **{size['edge_env_mb']:.0f} MB**, TensorFlow importable: "
              f"{size['edge_env_has_tensorflow']}",
              f"- host environment (peer): {size['host_env_mb'] or 0:.0f} MB; edge / host = {size['edge_vs_host'] or 0:.2f}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edge-python", default=sys.executable, help="Python of the edge-only environment.")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--listen-seconds", type=float, default=60.0)
    parser.add_argument("--vad-hops", type=int, default=200, help="0.5 s hops each VAD backend is timed on.")
    parser.add_argument("--user-runs", type=int, default=5, help="Runs of each user command (cold start, peak RSS).")
    args = parser.parse_args()
    report = {"models": model_section(args.edge_python, args.repeats), "features": feature_section(args.repeats),
              "vad": vad_section([args.edge_python, sys.executable], args.vad_hops),
              "user": user_section(args.edge_python, args.user_runs),
              "listen": listen_section(args.edge_python, args.listen_seconds), "size": size_section(args.edge_python),
              "digest": digest_section(args.repeats)}
    out = PROJECT / "runs" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    (out / "bench.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
