"""Classifying recorded audio: a file -> trimmed clip -> overlapping windows -> mean probabilities.

By default the same steps the training pipeline scores its test clips with (`train/evaluate.py`),
so a file classified here gets the probabilities the evaluation report counted. `trim="window"`
instead cuts every window to its own loud span, as `listen` does (better for long recordings with
pauses); `trim="none"` cuts nothing. Files stream through in blocks (memory does not grow with their
length); with a speech detector (edge/vad.py) windows without speech are skipped, and the reported
probabilities are the bundle's calibration of the mean (edge/calibration.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from edge.answers import Answers, rounded
from edge.audio import is_audio_file, stream_audio
from edge.corpora import parse_any
from edge.runtime import EdgeModel
from edge.settings import ClassifySettings
from edge.vad import NO_SPEECH, SpeechDetector, SpeechShare, SpeechTracker
from edge.windowing import LoudSpan, WindowCutter, hop_samples, window_input


@dataclass(frozen=True)
class WindowResult:
    start: float  # seconds into the file
    end: float
    label: str
    confidence: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class ClipResult:
    path: str
    label: str  # an emotion, or "no speech" when no window held speech
    confidence: float
    probabilities: dict[str, float]  # empty for "no speech"
    duration: float  # seconds of audio in the file
    windows: list[WindowResult] = field(default_factory=list)

    def to_dict(self, with_windows: bool = False) -> dict[str, Any]:
        data = rounded(asdict(self))
        windows = data.pop("windows")
        return {**data, "windows": [rounded(w) for w in windows]} if with_windows else data


class _Tally:
    """Window results of one clip as they come: the sum of the speech windows' probabilities."""

    def __init__(self, model: EdgeModel, settings: ClassifySettings, answers: Answers) -> None:
        self.model, self.settings, self.answers = model, settings, answers
        self.params = model.bundle.params
        self.sum = np.zeros(len(model.labels), dtype=np.float64)
        self.speech_windows = 0
        self.windows: list[WindowResult] = []

    def add(self, start: int, window: np.ndarray, speech: SpeechShare | None, offset: int) -> None:
        rate = self.params.sample_rate
        times = ((offset + start) / rate, (offset + start + self.params.window_samples) / rate)
        if speech is not None and not speech.is_speech:
            if self.settings.keep_windows:
                self.windows.append(WindowResult(*times, NO_SPEECH, 0.0, {}))
            return
        probabilities = self.model.predict(window_input(window, self.params, self.settings.trim == "window"))
        self.sum += probabilities
        self.speech_windows += 1
        if self.settings.keep_windows:
            label, confidence, shares = self.answers.answer(probabilities)
            self.windows.append(WindowResult(*times, label, confidence, shares))

    def result(self, path: str, duration: float) -> ClipResult:
        if not self.speech_windows:
            return ClipResult(path, NO_SPEECH, 0.0, {}, duration, self.windows)
        mean = self.sum / self.speech_windows
        label, confidence, table = self.answers.answer(mean)
        return ClipResult(path, label, confidence, table, duration, self.windows)


def classify_blocks(model: EdgeModel, blocks: Callable[[], Iterable[np.ndarray]], path: str = "",
                    settings: ClassifySettings = ClassifySettings(), detector: SpeechDetector | None = None,
                    answers: Answers | None = None) -> ClipResult:
    """A clip given as blocks of audio at the model's rate (`blocks()` restarts it: trim="clip" reads it
    twice, once to find the loud span) -> its label. Windows are cut, featured and classified as the
    blocks arrive, so memory does not depend on the clip's length. Windows the detector finds no speech
    in are skipped; a clip without a speech window is labelled "no speech". `answers`: how the mean is
    reported (None: the bundle's calibration over every label)."""
    params = model.bundle.params
    first, last, length = _span(blocks) if settings.trim == "clip" else (0, None, None)
    hop_seconds = model.bundle.clip_hop_seconds if settings.hop_seconds is None else settings.hop_seconds
    cutter = WindowCutter(params.window_samples, hop_samples(hop_seconds, params.sample_rate))
    tracker = SpeechTracker(detector, params.window_samples + cutter.hop) if detector else None
    tally = _Tally(model, settings, answers or Answers.of(model.bundle))
    position = 0  # in the whole clip; the cutter sees only [first, last)
    for piece in _pieces(blocks(), cutter.hop):
        if tracker:
            tracker.push(piece)  # the detector hears all of it, silent ends included
        kept = piece[max(first - position, 0): piece.size if last is None else max(last - position, 0)]
        position += piece.size
        for start, window in cutter.push(kept):
            tally.add(start, window, _speech(tracker, first + start, window.size), first)
    for start, window in cutter.finish():
        heard = min(window.size, cutter.total)  # a short clip repeated: judge the samples it really has
        tally.add(start, window, _speech(tracker, first + start, heard), first)
    return tally.result(path, (cutter.total if length is None else length) / params.sample_rate)


def _span(blocks: Callable[[], Iterable[np.ndarray]]) -> tuple[int, int, int]:
    """(first, last) samples of the clip's loud span, and the clip's length."""
    loud = LoudSpan()
    for block in blocks():
        loud.push(block)
    return (*loud.span(), loud.total)


def _pieces(blocks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The blocks cut into pieces of at most `size` samples (the speech tracker keeps a window and a hop)."""
    for block in blocks:
        for start in range(0, block.size, size):
            yield block[start: start + size]


def _speech(tracker: SpeechTracker | None, start: int, length: int) -> SpeechShare | None:
    return tracker.share(start, start + length) if tracker else None


def classify_signal(model: EdgeModel, signal: np.ndarray, path: str = "", settings: ClassifySettings = ClassifySettings(),
                    detector: SpeechDetector | None = None, answers: Answers | None = None) -> ClipResult:
    """One clip already in memory, at the model's rate -> its label (see `classify_blocks`)."""
    return classify_blocks(model, lambda: [signal], path, settings, detector, answers)


def classify_file(model: EdgeModel, path: str | Path, settings: ClassifySettings = ClassifySettings(),
                  detector: SpeechDetector | None = None, answers: Answers | None = None) -> ClipResult:
    """Any file soundfile reads, any rate or channel count, any length: streamed from disk in blocks."""
    rate = model.bundle.params.sample_rate  # stream_audio checks the header before decoding anything
    return classify_blocks(model, lambda: stream_audio(path, rate), str(path), settings, detector, answers)


def expand_audio_paths(paths: list[Path]) -> list[Path]:
    """Files as given (even if not audio: the error is reported per file); folders -> their audio files."""
    expanded: list[Path] = []
    for path in map(Path, paths):
        expanded += sorted(p for p in path.rglob("*") if is_audio_file(p)) if path.is_dir() else [path]
    return expanded


def true_label(path: Path) -> str | None:
    """The label a corpus-convention file name carries (RAVDESS, TESS, CREMA-D, SAVEE, EmoDB), else None."""
    parsed = parse_any(Path(path))
    return parsed[1].label if parsed else None
