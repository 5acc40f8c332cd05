"""`edge-ser classify`: recorded files (or folders of them), one line or JSON object per file."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from edge.cli.app import DEVICE_PANEL, app, choices_metavar, in_range, one_of, user_errors
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
from edge.errors import EXIT_FAILURE, EdgeSerError
from edge.plural import counted
from edge.settings import CLIP_HOP_SECONDS, TRIM_MODES, ClassifySettings

if TYPE_CHECKING:  # numpy and the runtime load when the verb runs, not for --help
    from edge.answers import Answers
    from edge.runtime import EdgeModel
    from edge.vad import SpeechDetector


@app.command(rich_help_panel=DEVICE_PANEL)
def classify(
    files: List[Path] = typer.Argument(..., help="Audio files (any format soundfile reads, any rate or channels)."),
    model: Optional[Path] = model_option(),
    json_output: bool = json_option(help="One JSON object per file, one per line."),
    windows: bool = typer.Option(False, "--windows", help="Also give every window's prediction (times in the file)."),
    trim: str = typer.Option(ClassifySettings.trim, callback=one_of(TRIM_MODES), metavar=choices_metavar(TRIM_MODES),
                             help="clip: cut the file's silent ends first (as training did); window: cut each window's, "
                             "as listen does (long recordings with pauses); none."),
    hop: Optional[float] = typer.Option(None, callback=in_range(0.01, 60), help="Seconds between windows of a long "
                                        f"file (default: the model's, {CLIP_HOP_SECONDS:g})."),
    labels: Optional[str] = labels_option(),
    vad: str = vad_option(),
    threads: int = threads_option(),
    delegate: str = delegate_option(),
    require_delegate: bool = require_delegate_option(),
    runtime: Optional[str] = runtime_option(),
) -> None:
    """Classify recorded files (or every audio file in a folder): windows averaged per file.

    When a file's name follows a corpus convention (RAVDESS, TESS, ...), its true label is shown too.
    A file that cannot be classified is reported on stderr and the others go on; exit 1 at the end."""
    from edge.classify import expand_audio_paths
    from edge.vad import load_detector

    with user_errors():
        detector = load_detector(vad)
        loaded, answers = load_model(model, threads, delegate, require_delegate, runtime, labels)
        paths = expand_audio_paths(files)
        if not paths:
            raise EdgeSerError(f"no audio files in {', '.join(map(str, files))}")
    settings = ClassifySettings(trim=trim, hop_seconds=hop, keep_windows=windows)
    failed = _classify_each(loaded, answers, paths, settings, detector, json_output)
    if failed:
        typer.echo(f"{failed} of {counted(len(paths), 'file')} could not be classified", err=True)
        raise typer.Exit(EXIT_FAILURE)


def _classify_each(loaded: EdgeModel, answers: Answers, paths: List[Path], settings: ClassifySettings,
                   detector: SpeechDetector | None, json_output: bool) -> int:
    """Classify every file; a file that fails is reported and the batch goes on. Returns the failures."""
    import json

    from edge.classify import classify_file, true_label
    from edge.render import bar, short_path

    failed, shown_header = 0, json_output
    score = Score(answers.labels)
    for path in paths:
        try:
            result = classify_file(loaded, path, settings, detector, answers)
        except Exception as error:  # noqa: BLE001 - one bad file never stops a batch
            failed += 1
            message = _file_error(path, error)
            typer.echo(f"error: {message}", err=True)
            if json_output:
                typer.echo(json.dumps({"path": str(path), "error": message}))
            continue
        truth = true_label(path)
        score.add(truth, result.label)
        if json_output:
            typer.echo(json.dumps(dict(result.to_dict(with_windows=settings.keep_windows), true_label=truth)))
            continue
        if not shown_header:  # only once a file could be read: a batch of unreadable files gets no empty table
            typer.echo(f"{'file':<40} {'true':<10} {'predicted':<10} confidence")
            shown_header = True
        shown = f"{bar(result.confidence, 10)} {result.confidence:.2f}" if result.probabilities else ""
        typer.echo(f"{short_path(path, 40):<40} {truth or '-':<10} {result.label:<10} {shown}")
        for w in result.windows:
            typer.echo(f"  {w.start:6.1f}-{w.end:5.1f} s  {w.label:<10} " + (f"{w.confidence:.2f}" if w.probabilities else ""))
    for line in [] if json_output else score.lines():
        typer.echo(line)
    return failed


@dataclass
class Score:
    """The files whose names carry a true label, counted only where the model can give that label (a RAVDESS
    'calm' clip is no mistake of a model without calm, or of --labels leaving it out)."""

    answerable: tuple[str, ...]
    scored: int = 0
    correct: int = 0
    unanswerable: Counter[str] = field(default_factory=Counter)

    def add(self, truth: Optional[str], predicted: str) -> None:
        if truth is not None and truth not in self.answerable:
            self.unanswerable[truth] += 1
        elif truth is not None:
            self.scored += 1
            self.correct += truth == predicted

    def lines(self) -> list[str]:
        lines = [f"correct: {self.correct} of {counted(self.scored, 'file')} whose names carry a label the model "
                 "answers"] if self.scored else []
        if self.unanswerable:
            lines.append(f"not counted: {counted(sum(self.unanswerable.values()), 'file')} labelled "
                         f"{', '.join(sorted(self.unanswerable))}, which the model does not answer")
        return lines


def _file_error(path: Path, error: Exception) -> str:
    """One line for a file that failed: the reader's own message, or the path and what went wrong."""
    from edge.audio import AudioReadError

    if isinstance(error, AudioReadError):
        return str(error)
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"cannot classify {path}: {type(error).__name__}{': ' + detail if detail else ''}"

