"""`edge-ser adapt`: a few labelled clips of a voice, a room or a language -> an adapted copy of a model.

The clips are read, trimmed and cut into windows as `classify` reads a file (and as training scored
its test clips); the network gives each window its probabilities and a summary of what it heard (the
vector it pools over time, and its front-end's mean and spread over time), and a small layer is fitted
on those (edge/adaptation.py). The result is the base `.tflite` with those tensors as further outputs
and the layer in its bundle: one file every verb takes with `--model`. The base file is
only read. See docs/adaptation.md for what to expect.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from edge.adaptation import Adaptation, choose_strength, fit_head, how_chosen
from edge.audio import AudioReadError, is_audio_file, read_audio
from edge.bundle import Bundle, ModelBundleError
from edge.bundle_json import read_bundle
from edge.calibration import Calibration
from edge.corpora import LABEL_SYNONYMS
from edge.discovery import DatasetError, Utterance, discover
from edge.errors import UsageError
from edge.files import write_bytes_whole
from edge.model_file import adapted_flatbuffer
from edge.runtime import EdgeModel
from edge.settings import RuntimeSettings
from edge.vad import FRAME_SAMPLES, MIN_SPEECH_SHARE, SpeechDetector, SpeechTracker
from edge.windowing import clip_features, trim_silence

SILENCE_PEAK = 1 / 32768  # below one 16-bit step: no sound at all (as training skips such clips)
VAD_BLOCK = 16000  # samples the detector hears between checks of whether the clip already has enough speech
Say = Callable[[str], None]


@dataclass(frozen=True)
class AdaptSettings:
    strength: float | None = None  # the pull toward the base model, in clips; None: cross-validated on the clips
    labels: tuple[str, ...] = ()  # adapt to these labels only (--labels); () = every label the clips have
    threads: int = RuntimeSettings.threads


@dataclass(frozen=True)
class ClipOutputs:
    """The network's view of one clip: every window's probabilities and the vector an adapted layer reads
    (edge.adaptation.window_summary)."""

    label: str
    probabilities: np.ndarray  # (windows, network outputs)
    summary: np.ndarray  # (windows, summary size)


def check_out(base: Path, out: Path) -> None:
    if out.resolve() == base.resolve():
        raise UsageError(f"--out {out} is the base model: the base is never overwritten, name a new file")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")


def read_base(base: Path) -> tuple[bytes, Bundle]:
    """The base model's bytes and bundle; anything but an unadapted edge-ser model is a usage error."""
    try:
        bundle = read_bundle(base)
    except ModelBundleError as error:
        raise UsageError(f"{error} (adapt needs an edge-ser model)") from None
    if bundle.adaptation is not None:
        raise UsageError(f"{base} is already adapted (from {bundle.adaptation.base_model}): adapt that base model "
                         "with all the clips instead")
    return base.read_bytes(), bundle


def exposed_network(base_bytes: bytes, bundle: Bundle) -> bytes:
    """The base network with what an adapted layer reads as further outputs (edge/model_file.py)."""
    return adapted_flatbuffer(base_bytes, bundle.to_dict())


def open_for_adapting(exposed: bytes, folder: Path, threads: int = RuntimeSettings.threads) -> EdgeModel:
    """`exposed` (exposed_network), written into `folder` and loaded."""
    path = Path(folder) / "exposed.tflite"
    path.write_bytes(exposed)
    return EdgeModel(path, threads=threads)


def labelled_clips(data: list[Path], model_labels: tuple[str, ...], wanted: tuple[str, ...], say: Say) -> list[Utterance]:
    """Every clip DATA names, checked against the model's labels (and --labels: others are left out)."""
    found: list[Utterance] = []
    for root in data:
        _check_label_folders(root)
        try:
            listed = discover(root)
        except DatasetError as error:
            raise UsageError(str(error)) from None
        for path, why in listed.skipped:
            say(f"skipped {path}: {why}")
        found += listed.utterances
    relevant = {u.label for u in found} & set(wanted) if wanted else {u.label for u in found}
    unknown = sorted(relevant - set(model_labels))
    if unknown:
        raise UsageError(f"label {', '.join(unknown)} is not in the base model (its labels: {', '.join(model_labels)})")
    if wanted:
        left_out = [u for u in found if u.label not in wanted]
        if left_out:
            say(f"left out {len(left_out)} clip(s) of labels --labels does not name")
        found = [u for u in found if u.label in wanted]
    return found


def _check_label_folders(root: Path) -> None:
    """A folder per label: an emotion's folder with no clip is a mistake worth stopping for."""
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower() in LABEL_SYNONYMS):
        if not any(is_audio_file(p) for p in folder.rglob("*")):
            raise UsageError(f"folder {folder} holds no audio clip (label {LABEL_SYNONYMS[folder.name.lower()]})")


def clip_outputs(model: EdgeModel, clip: Utterance, detector: SpeechDetector | None) -> ClipOutputs | str:
    """The clip's windows through the network, or why the clip cannot be used."""
    params = model.bundle.params
    try:
        audio = read_audio(clip.path, params.sample_rate)
    except AudioReadError as error:
        return str(error).split(": ", 1)[-1]
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        return "silent"
    if detector is not None and not has_speech(detector, audio):
        return "no speech (the voice-activity detector found none)"
    return signal_outputs(model, clip.label, audio)


def signal_outputs(model: EdgeModel, label: str, audio: np.ndarray) -> ClipOutputs:
    """A clip's audio, at the model's rate, trimmed and windowed as training scored clips, through the network."""
    outputs = [model.network_outputs(window) for window in clip_features(trim_silence(audio), model.bundle.params)]
    probabilities = np.stack([p for p, _ in outputs])
    summary = np.stack([h for _, h in outputs if h is not None])
    return ClipOutputs(label, probabilities, summary)


def has_speech(detector: SpeechDetector, audio: np.ndarray) -> bool:
    """Whether at least MIN_SPEECH_SHARE of the clip's detector frames are speech; stops listening as soon
    as that many have been heard (most clips: within their first second or two)."""
    tracker = SpeechTracker(detector, audio.size)
    needed = MIN_SPEECH_SHARE * (audio.size // FRAME_SAMPLES)
    for end in range(VAD_BLOCK, audio.size + VAD_BLOCK, VAD_BLOCK):
        tracker.push(audio[end - VAD_BLOCK: end])
        heard = min(end, audio.size)
        if tracker.share(0, heard).share * (heard // FRAME_SAMPLES) >= max(needed, 1):
            return True
    return False


def network_view(model: EdgeModel, clips: list[Utterance], detector: SpeechDetector | None, say: Say) -> list[ClipOutputs]:
    usable = []
    for clip in clips:
        result = clip_outputs(model, clip, detector)
        if isinstance(result, str):
            say(f"skipped {clip.path}: {result}")
        else:
            usable.append(result)
    return usable


def adapted_labels(usable: list[ClipOutputs], wanted: tuple[str, ...], model_labels: tuple[str, ...]) -> tuple[str, ...]:
    """The labels to adapt to, in the model's order; every one needs a clip, and there must be two."""
    seen = {c.label for c in usable}
    if not usable:
        raise UsageError("no usable clip: every clip was skipped (see the messages above)")
    missing = [label for label in wanted if label not in seen]
    if missing:
        raise UsageError(f"no usable clip of label {', '.join(missing)} (--labels names it)")
    labels = tuple(label for label in model_labels if label in seen)
    if len(labels) < 2:
        raise UsageError(f"clips of one label only ({labels[0]}): adaptation learns to tell labels apart and needs "
                         "clips of at least two (docs/adaptation.md)")
    return labels


def window_arrays(usable: list[ClipOutputs], labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What `fit_head` takes, window by window: probabilities, summary, targets (index into labels), clip numbers."""
    probabilities = np.concatenate([c.probabilities for c in usable])
    summary = np.concatenate([c.summary for c in usable])
    targets = np.concatenate([np.full(len(c.probabilities), labels.index(c.label)) for c in usable])
    clips = np.concatenate([np.full(len(c.probabilities), i) for i, c in enumerate(usable)])
    return probabilities, summary, targets, clips


def adapt(base: Path, data: list[Path], out: Path, settings: AdaptSettings, detector: SpeechDetector | None,
          say: Say) -> Adaptation:
    """Fit the layer on DATA's clips and write `out` whole (or nothing); the base file is only read."""
    check_out(base, out)
    base_bytes, bundle = read_base(base)
    unknown = [label for label in settings.labels if label not in bundle.labels]
    if unknown:
        raise UsageError(f"--labels names {', '.join(unknown)}, which the base model does not have "
                         f"(its labels: {', '.join(bundle.labels)})")
    clips = labelled_clips(data, bundle.labels, settings.labels, say)
    with tempfile.TemporaryDirectory(prefix="edge-ser-adapt-") as scratch:
        usable = network_view(open_for_adapting(exposed_network(base_bytes, bundle), Path(scratch), settings.threads),
                              clips, detector, say)
        labels = adapted_labels(usable, settings.labels, bundle.labels)
        probabilities, summary, targets, numbers = window_arrays(usable, labels)
        columns = tuple(bundle.labels.index(label) for label in labels)
        strength = settings.strength or choose_strength(columns, summary, probabilities, targets, numbers)
        head = fit_head(columns, summary, probabilities, targets, numbers, strength)
        per_label = {label: sum(c.label == label for c in usable) for label in labels}
        adaptation = Adaptation(head=head, labels=labels, base_model=base.name,
                                base_sha256=hashlib.sha256(base_bytes).hexdigest(), clips_per_label=per_label,
                                strength=strength, strength_chosen=how_chosen(settings.strength, per_label))
        adapted = replace(bundle, adaptation=adaptation, calibration=Calibration(), calibration_report=None)
        written = adapted_flatbuffer(base_bytes, adapted.to_dict())
        check = Path(scratch) / "adapted.tflite"
        check.write_bytes(written)
        EdgeModel(check)  # the file loads and its layer fits the network, before it replaces anything
    write_bytes_whole(out, written)
    return adaptation
