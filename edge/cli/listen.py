"""`edge-ser listen`: live microphone audio (or a file streamed like it), a decision every hop."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer

from edge.cli.app import DEVICE_PANEL, FRACTION, POSITIVE, app, fail, in_range, user_errors
from edge.cli.options import (
    delegate_option,
    json_option,
    labels_option,
    load_model,
    model_option,
    require_delegate_option,
    runtime_option,
    threads_option,
    vad_option,
)
from edge.errors import EdgeSerError, UsageError
from edge.settings import DEFAULT_STALL_SECONDS, ListenSettings

if TYPE_CHECKING:  # numpy and the runtime load when the verb runs, not for --help
    from edge.answers import Answers
    from edge.bundle import Bundle
    from edge.listen import AudioSource
    from edge.runtime import EdgeModel
    from edge.stream import StreamClassifier
    from edge.vad import SpeechDetector

RATE_HELP = ("Open the microphone at this rate (default: the model's if the device has it, else the device's own); "
             "resampled to the model's rate.")
TARGET_ACCURACY_HELP = ("Pick the threshold whose held-out windows reach this accuracy (from the model's calibration; "
                        "instead of --threshold).")
TRIM_WINDOWS_HELP = "Cut each window to its loud span (pauses out), like the trimmed clips the model was trained on."


@app.command(rich_help_panel=DEVICE_PANEL)
def listen(
    model: Optional[Path] = model_option(),
    device: Optional[str] = typer.Option(None, help="Input device: index or part of its name (see `edge-ser devices`)."),
    rate: Optional[int] = typer.Option(None, min=4000, max=384000, help=RATE_HELP),
    source: Optional[Path] = typer.Option(None, help="Stream this audio file through the same path instead of a microphone."),
    realtime: bool = typer.Option(False, help="With --source: pace the file at real time."),
    hop: float = typer.Option(ListenSettings.hop_seconds, callback=in_range(0.01, 60),
                              help="Seconds between decisions (the window is the model's, 2 s)."),
    silence_db: float = typer.Option(ListenSettings.silence_db, callback=in_range(-200, 0),
                                     help="Windows quieter than this RMS level (dBFS) are reported as silence."),
    smoothing: int = typer.Option(ListenSettings.smoothing, min=1, help="Average the probabilities of this many recent windows."),
    threshold: Optional[float] = typer.Option(None, callback=FRACTION, help="Below this smoothed confidence, say "
                                              f"'uncertain' (default {ListenSettings.threshold:g})."),
    target_accuracy: Optional[float] = typer.Option(None, callback=in_range(0, 1, above=True, below=True),
                                                    help=TARGET_ACCURACY_HELP),
    trim_windows: bool = typer.Option(ListenSettings.trim_windows, help=TRIM_WINDOWS_HELP),
    duration: Optional[float] = typer.Option(None, callback=POSITIVE, help="Stop after this many seconds of audio."),
    labels: Optional[str] = labels_option(),
    vad: str = vad_option(),
    json_output: bool = json_option(help="One JSON object per window (time, label, confidence, probabilities, level)."),
    save_dir: Optional[Path] = typer.Option(None, help="Keep every classified window as a WAV with its prediction."),
    stall_timeout: float = typer.Option(DEFAULT_STALL_SECONDS, callback=POSITIVE,
                                        help="Give up when the microphone delivers nothing for this long (s)."),
    threads: int = threads_option(),
    delegate: str = delegate_option(),
    require_delegate: bool = require_delegate_option(),
    runtime: Optional[str] = runtime_option(),
) -> None:
    """Classify live microphone audio (or a file streamed like one) every hop; Ctrl-C or SIGTERM stops with a
    summary (exit 0); a microphone or sound server that goes away ends it with the summary and exit 1."""
    from edge.listen import Printer, WindowSaver, fan_out, prepare_save_dir, run_stream, stop_on_signals
    from edge.sources import FileSource, MicrophoneSource
    from edge.vad import load_detector

    with user_errors():
        _check_options(source, {"--device": device, "--rate": rate}, target_accuracy is not None and bool(labels))
        detector = load_detector(vad)
        if save_dir is not None:
            _prepare(save_dir, prepare_save_dir)
        loaded, answers = load_model(model, threads, delegate, require_delegate, runtime, labels)
        threshold = _listen_threshold(loaded.bundle, threshold, target_accuracy)
        settings = ListenSettings(hop_seconds=hop, silence_db=silence_db, smoothing=smoothing, threshold=threshold,
                                  trim_windows=trim_windows)
        audio = FileSource(source, realtime) if source is not None else MicrophoneSource(
            device, loaded.bundle.params.sample_rate, rate)
        classifier = _stream_classifier(loaded, answers, audio, settings, detector)
        printer = Printer(json_output)
        handlers = [printer] + ([WindowSaver(save_dir, classifier)] if save_dir else [])
        stop_on_signals()
        try:
            result = run_stream(audio, classifier, fan_out(*handlers), duration, stall_timeout)
        finally:
            printer.finish()
            if not audio.close():
                typer.echo("warning: the audio device did not close in time", err=True)
    typer.echo(result.summary(), err=True)
    if result.error:
        fail(result.error)


def _check_options(source: Optional[Path], microphone: dict[str, object], target_with_labels: bool) -> None:
    """Options that do not go together: a usage error, or a warning where one is only ignored."""
    if target_with_labels:
        raise UsageError("--target-accuracy's held-out curve was measured over all the model's labels, so it "
                         "does not hold with --labels; give --threshold instead")
    ignored = [name for name, value in microphone.items() if value is not None]
    if source is not None and ignored:
        typer.echo(f"warning: {' and '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} for a microphone, ignored "
                   "with --source (the file is read at its own rate, resampled to the model's)", err=True)


def _stream_classifier(loaded: EdgeModel, answers: Answers, audio: AudioSource, settings: ListenSettings,
                       detector: SpeechDetector | None) -> StreamClassifier:
    """The classifier fed from `audio`; says what it listens to (and warns when the audio is narrower
    than what the model learned from)."""
    from edge.stream import StreamClassifier

    try:
        classifier = StreamClassifier(loaded, audio.rate, settings, detector, answers)
    except ValueError as error:
        audio.close()
        raise UsageError(str(error)) from None
    model_rate = loaded.bundle.params.sample_rate
    resampled = f", resampled to {model_rate} Hz" if audio.rate != model_rate else ""
    if audio.rate < model_rate:
        typer.echo(f"warning: {audio.rate} Hz audio has nothing above {audio.rate // 2} Hz; the model was trained on "
                   f"{model_rate} Hz audio (up to {model_rate // 2} Hz), so expect different answers", err=True)
    typer.echo(f"listening: {audio.describe()}{resampled}; window {loaded.bundle.params.window_seconds:g} s, "
               f"hop {settings.hop_seconds:g} s; Ctrl-C stops", err=True)
    return classifier


def _listen_threshold(bundle: Bundle, threshold: Optional[float], target_accuracy: Optional[float]) -> float:
    """--threshold as given, or the one --target-accuracy picks from the bundle's held-out curve."""
    from edge.calibration import threshold_for

    if target_accuracy is None:
        return ListenSettings.threshold if threshold is None else threshold
    if threshold is not None:
        raise UsageError("give --threshold or --target-accuracy, not both")
    curve = list(bundle.calibration_report.risk_coverage.get("windows", ())) if bundle.calibration_report else []
    if not curve:
        raise EdgeSerError("this model carries no held-out risk-coverage curve (run `edge-ser calibrate` on its runs)")
    point = threshold_for(curve, target_accuracy)
    if point is None:
        best = max(p.accuracy for p in curve if p.coverage > 0)
        raise EdgeSerError(f"no threshold reaches {target_accuracy:.0%} on held-out windows (at best {best:.0%})")
    typer.echo(f"threshold {point.threshold:.2f}: held-out windows {point.accuracy:.0%} accurate, "
               f"{point.coverage:.0%} of them answered", err=True)
    return point.threshold


def _prepare(save_dir: Path, prepare: Callable[[Path], object]) -> None:
    try:
        prepare(save_dir)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise EdgeSerError(f"cannot write in --save-dir {save_dir}: {error.strerror or error}") from None
