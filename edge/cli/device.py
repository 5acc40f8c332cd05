"""`edge-ser info`, `devices` and `bench`: what is inside a model, which microphones there are, how fast it runs."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edge.cli.app import app, user_errors
from edge.cli.options import delegate_option, json_option, model_argument, runtime_option, threads_option
from edge.errors import EXIT_FAILURE


@app.command()
def info(
    model: Optional[Path] = model_argument(),
    json_output: bool = json_option(help="The whole bundle as JSON."),
) -> None:
    """Show the bundle inside a model: labels, feature params, corpora, metrics, versions."""
    import json

    from edge.bundle import read_bundle
    from edge.runtime import model_or_default

    with user_errors():
        model = model_or_default(model)
        bundle = read_bundle(model)
    if json_output:
        typer.echo(json.dumps(bundle.raw, indent=2))
        return
    raw = bundle.raw
    typer.echo(f"model: {model} ({model.stat().st_size / 1024:.0f} KiB)")
    typer.echo(f"labels: {', '.join(bundle.labels)}")
    typer.echo(f"window: {bundle.params.window_seconds} s ({bundle.params.frames_per_window} frames x "
               f"{bundle.params.n_features} features), normalisation: {bundle.params.normalisation}")
    typer.echo("feature params: " + ", ".join(f"{k}={v}" for k, v in bundle.params.to_dict().items()))
    for name, corpus in raw.get("corpora", {}).items():
        typer.echo(f"corpus: {name} ({corpus.get('files')} files, {corpus.get('speakers')} speakers) - "
                   f"licence {corpus.get('licence')}")
    if "licence" in raw:
        typer.echo(f"licence: {raw['licence']}")
    if "label_sources" in raw:
        typer.echo("labels taught by: " + ", ".join(f"{label} ({'+'.join(sources)})"
                                                    for label, sources in raw["label_sources"].items()))
    if "split" in raw:
        typer.echo(f"split: {raw['split'].get('description')}")
    if raw.get("training_device"):
        typer.echo(f"trained on: {raw['training_device']}")
    if "metrics" in raw:
        typer.echo("metrics (float): " + ", ".join(f"{k} {v:.3f}" for k, v in raw["metrics"].items())
                   + (f" - {raw['metrics_source']}" if "metrics_source" in raw else ""))
    for corpus, scores in raw.get("metrics_per_corpus", {}).items():
        typer.echo(f"  {corpus} held-out speakers: UA {scores['unweighted_accuracy']:.3f} over its "
                   f"{len(scores['labels'])} labels ({scores['n']} clips)")
    for line in _calibration_lines(raw.get("calibration")):
        typer.echo(line)
    if "conversion" in raw:
        conversion = raw["conversion"]
        typer.echo(f"conversion: {conversion['mode']}, accuracy {conversion['accuracy']:.4f} vs float "
                   f"{conversion['float_accuracy']:.4f} (drift {conversion['drift_pp']:+.2f} pp) on {conversion['evaluated_on']}")
    if "versions" in raw:
        typer.echo("versions: " + ", ".join(f"{k} {v}" for k, v in raw["versions"].items()))


def _calibration_lines(calibration: Optional[dict]) -> list[str]:
    if not calibration:
        return ["calibration: none (probabilities as the network gives them; see `edge-ser calibrate`)"]
    how = (f"confidence map ({len(calibration['confidence_map'])} knots)" if calibration.get("confidence_map")
           else f"temperature {calibration['temperature']:.3f}")
    lines = [f"calibration: {how}, held-out ECE {calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f} "
             f"({calibration['fitted_on']})"]
    from edge.calibration import KEY_ACCURACIES, curve_from_dicts, threshold_for

    for kind in ("windows", "clips"):
        curve = curve_from_dicts(calibration.get("risk_coverage", {}).get(kind, []))
        points = [(a, threshold_for(curve, a)) for a in KEY_ACCURACIES]
        lines.append(f"  held-out {kind}: " + "; ".join(
            f"{a:.0%} accurate at threshold {p.threshold:.2f} ({p.coverage:.0%} answered)" if p else f"{a:.0%} not reached"
            for a, p in points))
    return lines


@app.command()
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


@app.command()
def bench(
    models: Optional[List[Path]] = typer.Argument(None, help="Models to compare (default: the shipped model)."),
    threads: int = threads_option(),
    delegate: str = delegate_option(),
    runtime: Optional[str] = runtime_option(),
    repeats: int = typer.Option(200, min=5, help="Timed repetitions per figure."),
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
    typer.echo(f"runtime {results[0].runtime}, {threads} thread(s), {results[0].delegate}; hop 0.5 s, "
               f"median of {repeats}")
    typer.echo(bench_table(results))
