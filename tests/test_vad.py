"""The shipped voice-activity detector: Silero VAD converted to TFLite (edge/vad.py, convert/silero_vad.py).

Its decisions must be Silero's: frame by frame they are compared with Silero's own ONNX model on
onnxruntime (the reference) where that is installed (the host's `train` extra), over generated speech,
silence and noise."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.audio import read_audio
from edge.vad import FRAME_SAMPLES, VAD_MODEL, VAD_RATE, SileroTflite, SpeechTracker, VadError, load_detector
from tests.support.data import ANGRY
from tests.support.nonspeech import nonspeech_clips
from tests.support.vad_clip import frame_decisions, speech_silence_noise


def speech_share(detector, signal: np.ndarray) -> float:
    tracker = SpeechTracker(detector, signal.size)
    tracker.push(signal)
    return tracker.share(0, signal.size).share


def test_the_detector_hears_speech_and_not_noise():
    speech = read_audio(ANGRY, VAD_RATE)
    noise = dict(nonspeech_clips())["pink noise -20 dBFS"].astype(np.float32)
    detector = load_detector()
    assert detector is not None and detector.name == "silero"
    assert speech_share(detector, speech) > 0.3  # the clip has silent ends
    assert speech_share(detector, noise) < 0.1


def test_reset_starts_a_new_stream():
    detector = load_detector()
    speech = read_audio(ANGRY, VAD_RATE)[: 20 * FRAME_SAMPLES]
    first = [detector.probability(f) for f in speech.reshape(-1, FRAME_SAMPLES)]
    detector.reset()
    again = [detector.probability(f) for f in speech.reshape(-1, FRAME_SAMPLES)]
    assert first == again


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make sysdeps)")
def test_decisions_agree_with_silero_reference(tmp_path: Path):
    pytest.importorskip("onnxruntime", reason="the reference (onnxruntime, the host's train extra) is not installed")
    from convert import ConvertError
    from convert.silero_vad import ReferenceSilero, installed_onnx

    try:
        reference = ReferenceSilero(installed_onnx())
    except ConvertError as error:
        pytest.skip(str(error))
    clip = speech_silence_noise(tmp_path)
    ours, theirs = frame_decisions(load_detector(), clip), frame_decisions(reference, clip)
    assert 0.2 < theirs.mean() < 0.8  # both speech and non-speech frames are there to agree on
    assert np.mean(ours == theirs) >= 0.99


def test_a_missing_model_is_one_clear_error(tmp_path: Path):
    with pytest.raises(VadError, match="missing from this install.*--vad none"):
        SileroTflite(tmp_path / "silero_vad.tflite")
    damaged = tmp_path / "damaged.tflite"
    damaged.write_bytes(VAD_MODEL.read_bytes()[:1000])
    with pytest.raises(VadError, match="cannot load the voice-activity model"):
        SileroTflite(damaged)


def test_the_model_ships_with_its_licence():
    licence = (VAD_MODEL.parent / "LICENSE-silero-vad").read_text()
    assert "MIT License" in licence and "Silero Team" in licence


@pytest.mark.host
def test_the_detector_runs_beside_tensorflow():
    pytest.importorskip("tensorflow")
    speech = read_audio(ANGRY, VAD_RATE)
    assert speech_share(load_detector(), speech) > 0.3
