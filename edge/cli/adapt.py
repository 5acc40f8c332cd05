"""`edge-ser adapt`: a few labelled clips -> an adapted copy of a model, on the device (docs/adaptation.md)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edge.adaptation import LOST_BASE_STRENGTH, LOST_BASE_UA, ONE_CLIP_STRENGTH, STRENGTHS
from edge.cli.app import DEVICE_PANEL, POSITIVE, app, user_errors
from edge.cli.options import answer_labels, labels_option, model_option, threads_option, vad_option

DATA_HELP = ("Labelled clips: a corpus folder (RAVDESS, TESS, CREMA-D, SAVEE or EmoDB names), a folder per label "
             "(neutral/, happy/, ...) or a CSV manifest path,label[,speaker]; several may be given.")


@app.command(rich_help_panel=DEVICE_PANEL)
def adapt(
    data: List[Path] = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", help="The adapted model to write (.tflite); the base model is never changed."),
    model: Optional[Path] = model_option(),
    labels: Optional[str] = labels_option(),
    strength: Optional[float] = typer.Option(None, callback=POSITIVE, help="How strongly the adapted model is pulled "
                                             "back to the base, counted in clips: higher keeps it closer. Default: "
                                             f"chosen among {', '.join(f'{s:g}' for s in STRENGTHS)} by cross-validation "
                                             f"on the clips; with one clip per label {ONE_CLIP_STRENGTH:g}, or "
                                             f"{LOST_BASE_STRENGTH:g} where the base model gets under "
                                             f"{LOST_BASE_UA:.0%} of them right."),
    vad: str = vad_option(),
    threads: int = threads_option(),
) -> None:
    """Adapt a model to a voice, a room or a language from a few labelled clips (even one per label).

    Writes one .tflite that classify, listen, info and bench take with --model. Clips that cannot be read
    or hold no speech are skipped with a message; the adapted model answers among the labels it saw."""
    import time

    from edge.adapt import AdaptSettings
    from edge.adapt import adapt as adapt_model
    from edge.runtime import model_or_default
    from edge.vad import load_detector

    started = time.perf_counter()
    with user_errors():
        detector = load_detector(vad)
        base = model_or_default(model)
        settings = AdaptSettings(strength=strength, labels=answer_labels(labels), threads=threads)
        adaptation = adapt_model(base, data, out, settings, detector, lambda line: typer.echo(line, err=True))
    clips = ", ".join(f"{label} {n}" for label, n in adaptation.clips_per_label.items())
    typer.echo(f"adapted {base.name} to {sum(adaptation.clips_per_label.values())} clips ({clips}) in "
               f"{time.perf_counter() - started:.1f} s: {out}")
