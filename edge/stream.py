"""Live audio -> window predictions: the consumer side of `edge-ser listen`, free of any audio API.

Chunks of int16 audio at the microphone's rate go in (`StreamClassifier.push`); one
`WindowPrediction` comes out every hop once a full window has been heard. Per chunk: one
`pcm16_to_float`, the streaming resampler (when the mic runs at another rate), the streaming
features (only the new frames are computed), then per hop: an energy gate, the window cut to its
loud span, the per-window normalisation, one inference, smoothing and the confidence threshold.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.answers import Answers, rounded
from edge.features import StreamingFeatures, pcm16_to_float, window_features
from edge.plural import counted
from edge.resample import Resampler
from edge.runtime import EdgeModel
from edge.settings import ListenSettings
from edge.vad import NO_SPEECH, SpeechDetector, SpeechTracker
from edge.windowing import frame_power, trim_window_frames

SILENCE, UNCERTAIN = "silence", "uncertain"
NOT_CLASSIFIED = (SILENCE, NO_SPEECH)  # windows the emotion model never saw
LEVEL_FLOOR_DB = -100.0


def level_db(signal: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0
    return max(LEVEL_FLOOR_DB, 20 * np.log10(rms)) if rms > 0 else LEVEL_FLOOR_DB


@dataclass(frozen=True)
class WindowPrediction:
    time: float  # seconds of stream audio heard when the decision was made (= window end)
    start: float  # the window, in seconds of stream audio at the model's rate
    end: float
    label: str  # an emotion, "uncertain", "silence" or "no speech" (after smoothing)
    confidence: float  # smoothed probability of `label` (0 for silence and no speech)
    level_db: float  # RMS of the window, dBFS
    window_label: str | None = None  # this window alone, before smoothing (None when not classified)
    probabilities: dict[str, float] = field(default_factory=dict)  # this window alone

    def to_dict(self) -> dict[str, Any]:
        return rounded({"time": round(self.time, 3), "start": round(self.start, 3), "end": round(self.end, 3),
                        "label": self.label, "confidence": self.confidence, "level_db": round(self.level_db, 1),
                        "window_label": self.window_label, "probabilities": self.probabilities})


class Smoother:
    """Mean of the last `size` window probabilities (micro_speech RecognizeCommands' averaging)."""

    def __init__(self, size: int) -> None:
        self.recent: deque[np.ndarray] = deque(maxlen=max(1, size))

    def push(self, probabilities: np.ndarray) -> np.ndarray:
        self.recent.append(probabilities)
        return np.mean(self.recent, axis=0)

    def reset(self) -> None:
        self.recent.clear()


@dataclass
class StreamStats:
    seconds: float = 0.0  # audio heard, at the model's rate
    windows: int = 0
    labels: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        counts = ", ".join(f"{label} {n}" for label, n in self.labels.most_common()) or "none"
        return f"{self.seconds:.1f} s of audio, {counted(self.windows, 'window')}: {counts}"


class StreamClassifier:
    """Feed int16 chunks at `input_rate`; get a prediction every hop once a whole window is heard."""

    def __init__(self, model: EdgeModel, input_rate: int, settings: ListenSettings = ListenSettings(),
                 detector: SpeechDetector | None = None, answers: Answers | None = None) -> None:
        self.model, self.settings = model, settings
        self.answers = answers or Answers.of(model.bundle)  # how a window is reported (None: every label)
        self.params = model.bundle.params
        self.hop_frames = self._hop_frames(settings.hop_seconds)
        self.resampler = Resampler(input_rate, self.params.sample_rate) if input_rate != self.params.sample_rate else None
        self.features = StreamingFeatures(self.params)
        self.smoother = Smoother(settings.smoothing)
        self.stats = StreamStats()
        keep = self.params.window_samples + 2 * self.hop_frames * self.params.hop_length
        self.speech = SpeechTracker(detector, keep) if detector else None
        self._frames = np.zeros((0, self.params.n_coefficients), dtype=np.float32)  # the last window - 1 frames
        self._power = np.zeros(0)  # the mean square of the audio under each of those frames (window trimming)
        self._audio = np.zeros(0, dtype=np.float32)  # recent stream audio, enough to hold the next window
        self._audio_start = 0  # stream index of self._audio[0]
        self._unfed: list[np.ndarray] = []  # samples not yet given to the feature extractor
        self._frames_seen = 0
        self._samples_seen = 0

    def _hop_frames(self, hop_seconds: float) -> int:
        """The hop in feature frames: windows must start on a frame boundary to reuse frames."""
        frames = int(round(hop_seconds * self.params.sample_rate / self.params.hop_length))
        if frames < 1 or frames > self.params.frames_per_window:
            raise ValueError(f"hop must be between {self.params.hop_length / self.params.sample_rate:g} s and the "
                             f"window length {self.params.window_seconds:g} s, got {hop_seconds:g} s")
        return frames

    def push(self, pcm16: bytes | np.ndarray) -> list[WindowPrediction]:
        samples = pcm16_to_float(np.frombuffer(pcm16, dtype=np.int16) if isinstance(pcm16, bytes) else pcm16)
        if self.resampler is not None:
            samples = self.resampler.process(samples)
        return self._consume(samples)

    def _consume(self, samples: np.ndarray) -> list[WindowPrediction]:
        self._samples_seen += samples.size
        self.stats.seconds = self._samples_seen / self.params.sample_rate
        self._remember(samples)
        if self.speech:
            self.speech.push(samples)
        self._unfed.append(samples)
        if self._samples_seen < self._samples_for_next_window():
            return []  # features are computed once per hop, not per chunk: numpy's per-call cost dominates
        new = self.features.push(np.concatenate(self._unfed))
        self._unfed = []
        window = self.params.frames_per_window
        frames = np.concatenate((self._frames, new)) if len(self._frames) else new
        power = np.concatenate((self._power, self._new_frame_power(len(new))))
        first_new = self._frames_seen - len(self._frames)  # stream index of frames[0]
        predictions = []
        for i in range(len(self._frames), len(frames)):
            first = first_new + i - window + 1  # stream index of the window's first frame
            if first >= 0 and first % self.hop_frames == 0:
                span = slice(i - window + 1, i + 1)
                predictions.append(self._predict(first, frames[span], power[span]))
        self._frames_seen += len(new)
        self._frames, self._power = frames[-(window - 1):], power[-(window - 1):]
        return predictions

    def _new_frame_power(self, count: int) -> np.ndarray:
        """Mean square of the audio under the `count` frames just computed (only they are new)."""
        hop, win = self.params.hop_length, self.params.win_length
        offset = self._frames_seen * hop - self._audio_start
        return frame_power(self._audio[offset: offset + (count - 1) * hop + win], win, hop) if count else np.zeros(0)

    def _samples_for_next_window(self) -> int:
        """Stream samples needed before the next window's last frame can be computed."""
        next_first = -(-max(0, self._frames_seen - self.params.frames_per_window + 1) // self.hop_frames) * self.hop_frames
        last_frame = next_first + self.params.frames_per_window - 1
        return last_frame * self.params.hop_length + self.params.win_length

    def _remember(self, samples: np.ndarray) -> None:
        """Keep enough recent audio for the level gate and --save-dir of the windows still to come."""
        self._audio = np.concatenate((self._audio, samples))
        keep = self.params.window_samples + (self.hop_frames + 4) * self.params.hop_length + samples.size
        if self._audio.size > keep:
            self._audio_start += self._audio.size - keep
            self._audio = self._audio[-keep:]

    def window_audio(self, prediction: WindowPrediction) -> np.ndarray:
        """The audio of a window predicted from the latest chunk, for --save-dir."""
        return self._audio_slice(int(round(prediction.start * self.params.sample_rate)))

    def _audio_slice(self, start: int) -> np.ndarray:
        """The samples the window's frames cover: (frames - 1) * hop + win_length, 31,920 of the 32,000."""
        offset = start - self._audio_start
        if offset < 0:
            raise RuntimeError("window audio already dropped from the ring buffer")
        covered = (self.params.frames_per_window - 1) * self.params.hop_length + self.params.win_length
        return self._audio[offset: offset + covered]

    def _speech_gate(self, start: int, end: int) -> str | None:
        """NO_SPEECH when the detector heard no speech in the window, else None."""
        if self.speech is None or self.speech.share(start, end).is_speech:
            return None
        return NO_SPEECH

    def _predict(self, first_frame: int, frames: np.ndarray, power: np.ndarray) -> WindowPrediction:
        rate, hop = self.params.sample_rate, self.params.hop_length
        start = first_frame * hop
        end = start + self.params.window_samples
        window = self._audio_slice(start)
        level = level_db(window)
        self.stats.windows += 1
        gate = SILENCE if level < self.settings.silence_db else self._speech_gate(start, end)
        if gate:
            self.smoother.reset()
            self.stats.labels[gate] += 1
            return WindowPrediction(end / rate, start / rate, end / rate, gate, 0.0, level)
        if self.settings.trim_windows:
            frames = trim_window_frames(frames, power)
        raw = self.model.predict(window_features(frames, self.params))
        label, confidence, _ = self.answers.answer(self.smoother.push(raw))  # calibrated after smoothing, as fitted
        if confidence < self.settings.threshold:
            label = UNCERTAIN
        self.stats.labels[label] += 1
        window_label, _, table = self.answers.answer(raw)
        return WindowPrediction(end / rate, start / rate, end / rate, label, confidence, level, window_label, table)
