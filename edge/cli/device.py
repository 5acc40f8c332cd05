"""`edge-ser info`, `devices` and `bench`: what is inside a model, which microphones there are, how fast it runs."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from edge.cli.app import DEVICE_PANEL, app, user_errors
from edge.cli.options import (
    MODEL_HELP,
    delegate_option,
    json_option,
    model_option,
    runtime_option,
    threads_option,
)
from edge.errors import EXIT_FAILURE
from edge.plural import counted
from edge.settings import DEFAULT_BENCH_REPEATS, DEFAULT_HOP_SECONDS

if TYPE_CHECKING:  # numpy loads with these: only when a verb runs, not for --help
    from edge.bundle import Bundle, CalibrationReport
    from edge.calibration import Calibration


@app.command(rich_help_panel=DEVICE_PANEL)
def info(
    model: Optional[Path] = model_option(),
    json_output: bool = json_option(help="The whole bundle as JSON."),
) -> None:
    """Show the bundle inside a model: labels, feature params, corpora, metrics, versions."""
    import json

    from edge.bundle_json import read_bundle
    from edge.runtime import model_or_default

    with user_errors():
        model = model_or_default(model)
        bundle = read_bundle(model)
    if json_output:
        typer.echo(json.dumps(bundle.to_dict(), indent=2))
        return
    typer.echo(f"model: {model} ({model.stat().st_size / 1024:.0f} KiB)")
    for line in _bundle_lines(bundle):
        typer.echo(line)


def _bundle_lines(bundle: Bundle) -> list[str]:
    params = bundle.params
    lines = [f"labels: {', '.join(bundle.labels)}",
             f"window: {params.window_seconds} s ({params.frames_per_window} frames x {params.n_features} features), "
             f"normalisation: {params.normalisation}",
             "feature params: " + ", ".join(f"{k}={v}" for k, v in params.to_dict().items())]
    lines += [f"corpus: {name} ({counted(c.files, 'file')}, {counted(c.speakers, 'speaker')}) - licence {c.licence}"
              for name, c in bundle.corpora.items()]
    lines += [f"licence: {bundle.licence}"] if bundle.licence else []
    lines += _adaptation_lines(bundle)
    if bundle.label_sources:
        lines.append("labels taught by: " + ", ".join(f"{label} ({'+'.join(sources)})"
                                                      for label, sources in bundle.label_sources.items()))
    lines += [f"split: {bundle.split.description}"] if bundle.split else []
    lines += [f"trained on: {bundle.training_device}"] if bundle.training_device else []
    if bundle.metrics:
        lines.append("metrics (float): " + ", ".join(f"{k} {v:.3f}" for k, v in bundle.metrics.to_dict().items())
                     + (f" - {bundle.metrics_source}" if bundle.metrics_source else ""))
    lines += [f"  {corpus} held-out speakers: UA {scores.unweighted_accuracy:.3f} over its "
              f"{counted(len(scores.labels), 'label')} ({counted(scores.n, 'clip')})"
              for corpus, scores in bundle.metrics_per_corpus.items()]
    lines += _calibration_lines(bundle.calibration, bundle.calibration_report)
    if bundle.conversion:
        c = bundle.conversion
        lines.append(f"conversion: {c.mode}, LSTM {c.layout}, accuracy {c.accuracy:.4f} vs float {c.float_accuracy:.4f} "
                     f"(drift {c.drift_pp:+.2f} pp) on {c.evaluated_on}")
    lines += ["versions: " + ", ".join(f"{k} {v}" for k, v in bundle.versions.items())] if bundle.versions else []
    lines.append(f"digest: {bundle.digest} (the file matches it)" if bundle.digest else
                 "digest: none (written before edge-ser recorded one: loaded without a check)")
    return lines


def _adaptation_lines(bundle: Bundle) -> list[str]:
    """What `edge-ser adapt` did; the corpus, split and metrics lines that follow are the base model's."""
    adaptation = bundle.adaptation
    if adaptation is None:
        return []
    clips = ", ".join(f"{label} {n}" for label, n in adaptation.clips_per_label.items())
    return [f"adapted from: {adaptation.base_model} (sha256 {adaptation.base_sha256})",
            f"  answers among: {', '.join(adaptation.labels)}; clips per label: {clips}",
            f"  method: {adaptation.method} (strength {adaptation.strength:g} clips, {adaptation.strength_chosen})",
            f"  calibration: {adaptation.calibration}",
            "  the corpora, split and metrics shown describe the base model"]


def _calibration_lines(calibration: Calibration, report: Optional[CalibrationReport]) -> list[str]:
    from edge.calibration import KEY_ACCURACIES, Calibration, threshold_for

    how = (f"gap map ({counted(len(calibration.gap_map), 'knot')})" if calibration.gap_map
           else f"confidence map ({counted(len(calibration.confidence_map), 'knot')})" if calibration.confidence_map
           else f"temperature {calibration.temperature:.3f}")
    if report is None:
        if calibration == Calibration():
            return ["calibration: none (probabilities as the network gives them; see `edge-ser calibrate`)"]
        return [f"calibration: {how} (no held-out figures)"]
    lines = [f"calibration: {how}, held-out ECE {report.ece_before:.3f} -> {report.ece_after:.3f} ({report.fitted_on})"]
    if report.ece_after_per_corpus:
        lines.append("  ECE per corpus: " + _per_corpus(report.ece_after_per_corpus))
    if report.ece_unseen_corpus:
        lines.append("  ECE on a corpus left out of the fit: " + _per_corpus(report.ece_unseen_corpus))
    for kind in ("windows", "clips"):
        curve = list(report.risk_coverage.get(kind, ()))
        points = [(a, threshold_for(curve, a)) for a in KEY_ACCURACIES]
        lines.append(f"  held-out {kind}: " + "; ".join(
            f"{a:.0%} accurate at threshold {p.threshold:.2f} ({p.coverage:.0%} answered)" if p else f"{a:.0%} not reached"
            for a, p in points))
    return lines


def _per_corpus(ece: dict[str, float]) -> str:
    return ", ".join(f"{corpus} {value:.3f}" for corpus, value in ece.items())


@app.command(rich_help_panel=DEVICE_PANEL)
def devices(json_output: bool = json_option(help="A JSON list.")) -> None:
    """List audio input devices with the sample rates they record at (exit 1 when there is none)."""
    import json

    from edge.sources import list_input_devices

    with user_errors():
        found, default = list_input_devices()
    if json_output:
        typer.echo(json.dumps([dict(d.to_dict(), default=d.index == default) for d in found], indent=2))
    elif not found:
        typer.echo("no audio input device found", err=True)
    if not found:  # one rule for text and JSON: no device is a failure (exit 1)
        raise typer.Exit(EXIT_FAILURE)
    if json_output:
        return
    for d in found:
        mark = "*" if d.index == default else " "
        typer.echo(f"{mark}{d.index:3d}  {d.name:<32} {d.host_api:<6} {d.max_channels:2d} ch  default {d.default_rate} Hz  "
                   f"rates {', '.join(map(str, d.rates)) or '-'}")


@app.command(rich_help_panel=DEVICE_PANEL)
def bench(
    models: Optional[List[Path]] = typer.Option(None, "--model", help=MODEL_HELP + " Repeat it to compare models."),
    threads: int = threads_option(),
    delegate: str = delegate_option(),
    runtime: Optional[str] = runtime_option(),
    repeats: int = typer.Option(DEFAULT_BENCH_REPEATS, min=5, help="Timed repetitions per figure."),
    json_output: bool = json_option(help="A JSON list, one object per model."),
) -> None:
    """Per-window latency of features and inference (median, p95), real-time factor, peak RSS, cold start."""
    import json

    from edge.bench import bench_model, bench_table
    from edge.runtime import model_or_default

    with user_errors():
        paths = [model_or_default(m) for m in models] if models else [model_or_default(None, runtime)]
        results = [bench_model(p, threads, delegate, runtime, repeats) for p in paths]
    if json_output:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    typer.echo(f"runtime {results[0].runtime}, {counted(threads, 'thread')}, {results[0].delegate}; "
               f"hop {DEFAULT_HOP_SECONDS:g} s, median of {repeats}")
    typer.echo(bench_table(results))
