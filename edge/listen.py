"""`edge-ser listen`: the consumer loop, the terminal / JSON output and --save-dir."""
from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Callable, Protocol, TextIO

import soundfile

from edge.features import float_to_pcm16
from edge.render import BAR_WIDTH, bar, meter
from edge.settings import DEFAULT_STALL_SECONDS
from edge.sources import AudioSourceError, ChunkQueue
from edge.stream import NOT_CLASSIFIED, StreamClassifier, StreamStats, WindowPrediction

POLL_SECONDS = 0.25


class AudioSource(Protocol):
    rate: int
    finished: bool
    error: str | None
    chunks: ChunkQueue

    def read(self, timeout: float) -> bytes | None: ...
    def alive(self) -> bool: ...
    def close(self, timeout: float = 2.0) -> bool: ...
    def describe(self) -> str: ...


@dataclass
class ListenResult:
    stats: StreamStats
    overflows: int
    dropped: int
    stopped_by: str | None = None  # "Ctrl-C" or "SIGTERM" when asked to stop
    error: str | None = None  # why the audio ended early (the microphone or sound server went away)

    def summary(self) -> str:
        return (f"listened to {self.stats.summary()}; input overflows {self.overflows}, "
                f"dropped chunks {self.dropped}" + (f"; stopped by {self.stopped_by}" if self.stopped_by else ""))


class StopRequested(KeyboardInterrupt):
    """SIGTERM (a service manager stopping us): ends `listen` like Ctrl-C, with the summary."""


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop listening; SIGUSR1 prints every thread's stack on stderr
    (`kill -USR1 PID` to see where a listener that does not answer is). SIGINT's handler is set even
    when it was inherited as ignored, as a background job of a shell script inherits it (Python then
    installs none): `kill -INT` must stop `listen` wherever it was started."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise StopRequested("SIGTERM")
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if sys.__stderr__ is not None:
            faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, ValueError, OSError):  # no real stderr file (e.g. an embedding host): skip it
        pass


def run_stream(source: AudioSource, classifier: StreamClassifier, on_prediction: Callable[[WindowPrediction], None],
               duration: float | None = None, stall_seconds: float = DEFAULT_STALL_SECONDS) -> ListenResult:
    """Read chunks until the source ends, `duration` seconds of audio were heard, Ctrl-C or SIGTERM, or
    the audio stream dies (then `result.error` says why). Always returns the result, for the summary."""
    result = ListenResult(classifier.stats, 0, 0)
    try:
        while duration is None or classifier.stats.seconds < duration:
            chunk = source.read(POLL_SECONDS)
            if chunk is None:
                if source.finished:
                    result.error = source.error
                    break
                _check_alive(source, stall_seconds)
                continue
            for prediction in classifier.push(chunk):
                on_prediction(prediction)
    except KeyboardInterrupt as stop:
        result.stopped_by = str(stop) or "Ctrl-C"
    except AudioSourceError as error:
        result.error = str(error)
    finally:
        result.overflows, result.dropped = source.chunks.overflows, source.chunks.dropped
    return result


def _check_alive(source: AudioSource, stall_seconds: float) -> None:
    if not source.alive():
        raise AudioSourceError("the audio stream stopped (microphone unplugged or sound server gone)")
    silent_for = time.monotonic() - source.chunks.last_chunk_at
    if silent_for > stall_seconds:
        raise AudioSourceError(f"no audio from the microphone for {silent_for:.0f} s "
                               "(device gone or blocked?); stopping")


def terminal_line(p: WindowPrediction) -> str:
    """`  12.5 s  angry      ██████████·········· 0.52   level ███████··· -21 dB`"""
    confidence = f"{bar(p.confidence)} {p.confidence:.2f}" if p.label not in NOT_CLASSIFIED else " " * (BAR_WIDTH + 5)
    return f"{p.time:7.1f} s  {p.label:<10} {confidence}   level {meter(p.level_db)} {p.level_db:4.0f} dB"


class Printer:
    """A live line that rewrites itself on a terminal; one line per window when piped; or JSON lines."""

    def __init__(self, json_lines: bool, stream: TextIO | None = None) -> None:
        self.json_lines, self.stream = json_lines, stream or sys.stdout
        self.live = not json_lines and self.stream.isatty()

    def __call__(self, prediction: WindowPrediction) -> None:
        if self.json_lines:
            self.stream.write(json.dumps(prediction.to_dict()) + "\n")
        elif self.live:
            self.stream.write("\r" + terminal_line(prediction) + "\033[K")
        else:
            self.stream.write(terminal_line(prediction) + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.live:
            self.stream.write("\n")


class WindowSaver:
    """--save-dir: each classified window as a WAV plus one JSON line in predictions.jsonl. A file is
    written under a temporary name and renamed, so a full disk never leaves half a WAV; after a write
    error saving stops (said once on stderr) and listening goes on."""

    def __init__(self, directory: Path, classifier: StreamClassifier, errors: TextIO | None = None) -> None:
        self.directory, self.classifier = directory, classifier
        self.errors = errors or sys.stderr
        self.count = 0
        self.failed: str | None = None

    def __call__(self, prediction: WindowPrediction) -> None:
        if prediction.label in NOT_CLASSIFIED or self.failed:
            return
        name = f"{self.count + 1:05d}_{prediction.start:08.2f}s_{prediction.label}.wav"
        partial = self.directory / f".{name}.part"
        try:
            soundfile.write(partial, float_to_pcm16(self.classifier.window_audio(prediction)),
                            self.classifier.params.sample_rate, subtype="PCM_16", format="WAV")
            os.replace(partial, self.directory / name)
            self.count += 1
            with open(self.directory / "predictions.jsonl", "a") as log:
                log.write(json.dumps({"file": name, **prediction.to_dict()}) + "\n")
        except (OSError, RuntimeError) as error:  # soundfile reports a full disk as a RuntimeError
            partial.unlink(missing_ok=True)
            self.failed = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self.errors.write(f"warning: cannot save windows in {self.directory} any more ({self.failed}); "
                              "listening goes on without saving\n")


def prepare_save_dir(directory: Path) -> None:
    """Create --save-dir and prove it writable before listening starts; OSError/ValueError say why not."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"--save-dir {directory} is a file, not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / ".edge-ser-write-test"
    probe.write_bytes(b"")
    probe.unlink()


def fan_out(*handlers: Callable[[WindowPrediction], None]) -> Callable[[WindowPrediction], None]:
    def handle(prediction: WindowPrediction) -> None:
        for handler in handlers:
            handler(prediction)
    return handle

