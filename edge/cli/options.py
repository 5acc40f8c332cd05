"""Options several device verbs share, declared once, with defaults from edge.settings; and what the
shared model options turn into."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from edge.cli.app import choices_metavar, one_of, str_list
from edge.errors import UsageError
from edge.settings import DEFAULT_VAD, RUNTIME_NAMES, VAD_CHOICES, RuntimeSettings

if TYPE_CHECKING:  # numpy and the runtime load when a verb runs, not for --help
    from edge.answers import Answers
    from edge.runtime import EdgeModel

MODEL_HELP = ("A .tflite model made by edge-ser, or a shipped model by name: default (three corpora, "
              "non-commercial) or open (CREMA-D only, commercial use allowed).")
LABELS_HELP = ("Answer among these labels only, comma-separated, e.g. angry,disgust,fear,happy,neutral,sad (the six "
               "every training corpus has); the others are left out and the rest renormalised. Default: every label.")
VAD_HELP = ("Voice-activity detector: windows without speech get no emotion (\"no speech\"). silero: Silero VAD "
            "(shipped); none: classify every window.")
RUNTIME_HELP = "The TFLite runtime (default: the first installed, in this order)."


def model_option() -> Any:
    return typer.Option(None, help=MODEL_HELP)




def threads_option() -> Any:
    return typer.Option(RuntimeSettings.threads, min=1, help="Interpreter threads.")


def delegate_option() -> Any:
    return typer.Option(RuntimeSettings.delegate,
                        help="none, gpu (the usual GPU delegate library names) or the path of a delegate library.")


def require_delegate_option() -> Any:
    return typer.Option(RuntimeSettings.require_delegate, help="Fail instead of falling back to the CPU.")


def runtime_option() -> Any:
    return typer.Option(RuntimeSettings.runtime_name, callback=one_of(RUNTIME_NAMES), metavar=choices_metavar(RUNTIME_NAMES),
                        help=RUNTIME_HELP)


def labels_option() -> Any:
    return typer.Option(None, "--labels", help=LABELS_HELP)


def vad_option() -> Any:
    return typer.Option(DEFAULT_VAD, callback=one_of(VAD_CHOICES), metavar=choices_metavar(VAD_CHOICES), help=VAD_HELP)


def json_option(help: str) -> Any:
    return typer.Option(False, "--json", help=help)


def load_model(model: Optional[Path], threads: int, delegate: str, require_delegate: bool,
               runtime: Optional[str], labels: Optional[str] = None) -> tuple[EdgeModel, Answers]:
    """Load a model and say on stderr which runtime and delegate run it (and why a delegate fell back);
    with how its answers are reported: `labels` is --labels as typed (comma-separated)."""
    from edge.answers import Answers
    from edge.runtime import EdgeModel, model_or_default

    path, asked = model_or_default(model, runtime), answer_labels(labels)
    loaded = EdgeModel(path, threads=threads, delegate=delegate, require_delegate=require_delegate, runtime_name=runtime)
    answers = Answers.of(loaded.bundle, asked)
    report = loaded.delegate_report
    if report.message:  # the fallback, in one line
        typer.echo(f"warning: {report.message} ({loaded.runtime.name})", err=True)
    elif delegate != "none" or require_delegate:
        typer.echo(f"running on {report.in_use} ({loaded.runtime.name})", err=True)
    return loaded, answers


def answer_labels(labels: Optional[str]) -> tuple[str, ...]:
    """--labels as typed (comma-separated, synonyms such as `fearful` allowed) in the canonical vocabulary."""
    from edge.corpora import canonical_label

    if labels is not None and not str_list(labels):
        raise UsageError(f"--labels {labels!r} names no label (give them comma-separated, e.g. angry,happy,neutral,sad)")
    return tuple(dict.fromkeys(canonical_label(label) for label in str_list(labels)))
