"""The workstation's verbs: train, crosscorpus, calibrate, explore, download, quantize, compare.

The only module under `edge/` that imports `train` or `convert` (and through them TensorFlow, librosa),
lazily, inside the verb (but train.config's plain dataclasses, for the defaults), so the device install
never needs them (pyproject.toml's import-linter contracts hold it to that).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from convert import DEFAULT_MAX_DRIFT_PP, DEFAULT_MODE, MODES
from edge.cli.app import (
    FRACTION,
    WORKSTATION_PANEL,
    app,
    choices_metavar,
    each_of,
    fail,
    in_range,
    int_list,
    one_of,
    str_list,
    user_errors,
)
from edge.corpora import AUTO_CORPUS, CORPUS_CHOICES
from edge.errors import EXIT_DRIFT, EXIT_FAILURE, EdgeSerError, UsageError
from edge.plural import counted
from edge.settings import DEFAULT_LAYOUT, LAYOUTS

# The one module-level import of the host side: the training recipe's dataclasses, which import neither
# TensorFlow nor numpy, give train's options their defaults (each defined once, in train/config.py).
from train.config import (
    AUTO_FRONT_END,
    CORPUS_SHARES,
    DEFAULT_SPLIT,
    EPOCHS,
    FRONT_ENDS,
    LONG_SCHEDULE_CLIPS,
    LONG_SCHEDULE_EPOCHS,
    LOSSES,
    POOLINGS,
    RUNS_DIR,
    SAMPLINGS,
    SPLITS,
    AugmentConfig,
    ModelConfig,
    TrainConfig,
)

if TYPE_CHECKING:
    from edge.features import FeatureParams
    from train.download import DownloadReport
    from train.recipe import TrainRequest

# TensorFlow 2.21 prints two start-up notices twice each (absl's "before absl::InitializeLog()" warning and
# oneDNN's "custom operations are on"), from C++ before TF_CPP_MIN_LOG_LEVEL applies. Host verbs import it
# first through `_import_tensorflow_quietly`, which drops exactly those lines and passes the rest on.
TENSORFLOW_NOTICES = (b"absl::InitializeLog() is called", b"oneDNN custom operations are on")


def import_tensorflow_quietly() -> None:
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


# Help of train's options whose text takes more than a line; the defaults typer shows come from train.config.
SPLIT_HELP = "speaker-independent, random clips, or none (final fit on every file: no test set; see --estimate-from)."
CORPUS_HELP = (f"How to read DATA: {AUTO_CORPUS} (detected), a corpus's file naming, folder (a folder per label) or "
               "csv (a manifest).")
QUANTIZE_MODE_HELP = "The TFLite mode (dynamic: float accuracy and speed at about a quarter of the size)."
LAYOUT_HELP = ("The LSTM as one fused op (smallest, fastest on a CPU) or unrolled: plain ops that LiteRT's GPU "
               "accelerator runs (--delegate gpu).")


def corpus_option() -> Any:
    return typer.Option(AUTO_CORPUS, callback=one_of(CORPUS_CHOICES), metavar=choices_metavar(CORPUS_CHOICES), help=CORPUS_HELP)
VALIDATE_HELP = ("Hold out validation speakers to pick the best epoch and stop early; default: train on all "
                 "development speakers for --epochs and keep the last.")
MAX_CLIPS_PER_EPOCH_HELP = "An epoch is one pass over the training clips, capped at this many (0 = no cap)."
LOSS_HELP = f"{' or '.join(LOSSES)}: masked = cross-entropy over the labels the clip's corpus defines; softmax = every label."
SAMPLING_HELP = (f"{' or '.join(SAMPLINGS)}: balanced = every label equally often within each corpus; natural = "
                 "shuffled passes with class weights.")
CORPUS_SHARE_HELP = f"With balanced sampling, each corpus's share of the draws: {', '.join(CORPUS_SHARES)} (by its size)."
MIXUP_HELP = "Mix each training window with another of its corpus, weight Beta(a, a); 0 is off."
LABEL_SMOOTHING_HELP = "Share of the target spread over the labels the clip's corpus defines (0 = off)."
WEIGHT_DECAY_HELP = "AdamW's decoupled weight decay on kernels (0 = plain Adam)."
ROOM_PROBABILITY_HELP = "Share of training windows played through a simulated room and microphone."
WARP_PROBABILITY_HELP = ("Share of training windows whose log-mel bands are stretched in frequency (vocal-tract length "
                         "perturbation); needs log-mel features (--n-mfcc 0).")
WIDE_PROBABILITY_HELP = ("Share of training windows played through the wide acoustic world (reverberation, microphone "
                         "response, band, broadband noise at 0-20 dB SNR) instead of the room (docs/acoustic-suite.md).")
FRONT_END_HELP = (f"{AUTO_FRONT_END}: conv1d for one corpus, conv2d for several; {' or '.join(FRONT_ENDS)}: Conv1D over time "
                  "with the mel bands as channels, or small Conv2D layers whose kernels slide along the bands too.")
EPOCHS_HELP = (f"0 (the default): {EPOCHS}, or {LONG_SCHEDULE_EPOCHS} for one corpus of at least "
               f"{LONG_SCHEDULE_CLIPS} clips (docs/models.md \"One corpus\").")
CONV2D_CHANNELS_HELP = "Comma-separated channels per Conv2D layer (--front-end conv2d)."
POOL_HELP = "--front-end conv1d's max-pooling over time: the LSTM runs frames/pool steps (conv2d pools by 4 itself)."
POOLING_HELP = (f"{' or '.join(POOLINGS)}: how the LSTM's outputs over time become one vector (mean_max: both, side by "
                "side; attention: a mean weighted by a learnt score per step).")
NORMALISATION_HELP = ("window (per-window mean and variance of every band, the feature default), window_mean (the "
                      "mean only: each band keeps its dynamic range) or none.")
DYNAMIC_RANGE_HELP = ("Raise log-mel values more than this many dB below each window's loudest to that floor, so "
                      "studio silence looks like a room's noise floor (default: the feature default, off; "
                      "docs/models.md \"Features\").")
PCEN_HELP = ("Per-channel energy normalisation instead of the log of the mel bands, smoothing over this many seconds "
             "(librosa's default: 0.4): an automatic gain per band for far-field audio, stationary noise and riding "
             "levels (default: the feature default, off; docs/models.md \"Features\").")
TEACHER_WEIGHT_HELP = ("Distil the teacher (docs/teacher.md; `make teacher`): this share of the target is the teacher "
                       "head's soft labels, from a head fitted on other speakers (0 = off).")
TEACHER_FEATURE_HELP = ("Feature distillation (docs/teacher.md): add this weight times the squared error between a "
                        "training-only linear map of the student's pooled vector and the teacher's clip embedding "
                        "(0 = off).")
TEACHER_TEMPERATURE_HELP = "Temperature of the teacher head's soft labels (above 1: softer)."
INIT_FROM_HELP = ("Fine-tune: start from this run folder, .tflite or shipped model (default, open) instead of random "
                  "weights; its network and features are kept (docs/adaptation.md \"Fine-tuning a whole network\").")
ESTIMATE_FROM_HELP = ("With --split none: speaker-independent runs of the same recipe (e.g. the --folds runs) whose "
                      "mean test score the model carries.")
MODEL, AUGMENT, FIT = ModelConfig(), AugmentConfig(), TrainConfig()  # where train's option defaults come from


@app.command(rich_help_panel=WORKSTATION_PANEL)
def train(
    data: List[Path] = typer.Argument(..., help="Corpus folder(s) or CSV manifest(s); several are combined."),
    corpus: str = corpus_option(),
    split: str = typer.Option(DEFAULT_SPLIT, callback=one_of(SPLITS), metavar=choices_metavar(SPLITS), help=SPLIT_HELP),
    test_speakers: Optional[str] = typer.Option(None, help="Comma-separated held-out speakers, e.g. 17,18,19,20."),
    val_speakers: Optional[str] = typer.Option(None, help="Comma-separated validation speakers."),
    validate: bool = typer.Option(False, help=VALIDATE_HELP),
    folds: int = typer.Option(0, min=0, help="k-fold by speaker: number of folds (0 = off)."),
    fold: int = typer.Option(0, min=0, help="Which fold (0-based) is the test set when --folds is set."),
    epochs: int = typer.Option(FIT.epochs, min=0, help=EPOCHS_HELP),
    max_clips_per_epoch: int = typer.Option(FIT.max_clips_per_epoch, min=0, help=MAX_CLIPS_PER_EPOCH_HELP),
    loss: str = typer.Option(FIT.loss, help=LOSS_HELP),
    sampling: str = typer.Option(FIT.sampling, help=SAMPLING_HELP),
    corpus_share: str = typer.Option(FIT.corpus_share, help=CORPUS_SHARE_HELP),
    mixup: float = typer.Option(FIT.mixup, callback=in_range(0, 10), help=MIXUP_HELP),
    label_smoothing: float = typer.Option(FIT.label_smoothing, callback=in_range(0, 1, below=True), help=LABEL_SMOOTHING_HELP),
    weight_decay: float = typer.Option(FIT.weight_decay, callback=in_range(0, 1), help=WEIGHT_DECAY_HELP),
    teacher_weight: float = typer.Option(FIT.teacher_weight, callback=FRACTION, help=TEACHER_WEIGHT_HELP),
    teacher_temperature: float = typer.Option(FIT.teacher_temperature, callback=in_range(0, 100, above=True),
                                              help=TEACHER_TEMPERATURE_HELP),
    teacher_feature_weight: float = typer.Option(FIT.teacher_feature_weight, callback=in_range(0, 100),
                                                 help=TEACHER_FEATURE_HELP),
    room_probability: float = typer.Option(AUGMENT.room_probability, callback=FRACTION, help=ROOM_PROBABILITY_HELP),
    warp_probability: float = typer.Option(AUGMENT.warp_probability, callback=FRACTION, help=WARP_PROBABILITY_HELP),
    wide_probability: float = typer.Option(AUGMENT.wide_probability, callback=FRACTION, help=WIDE_PROBABILITY_HELP),
    batch_size: int = typer.Option(FIT.batch_size, min=1),
    learning_rate: float = typer.Option(FIT.learning_rate, callback=in_range(0, 10, above=True)),
    lstm_units: str = typer.Option(",".join(map(str, MODEL.lstm_units)), help="Comma-separated units per LSTM layer."),
    conv_filters: int = typer.Option(MODEL.conv_filters, min=0, help="--front-end conv1d's filters (0 = none)."),
    pool: int = typer.Option(MODEL.pool, min=1, help=POOL_HELP),
    dropout: float = typer.Option(MODEL.dropout, callback=in_range(0, 1, below=True)),
    pooling: str = typer.Option(MODEL.pooling, help=POOLING_HELP),
    front_end: str = typer.Option(MODEL.front_end, help=FRONT_END_HELP),
    conv2d_channels: str = typer.Option(",".join(map(str, MODEL.conv2d_channels)), help=CONV2D_CHANNELS_HELP),
    augment: bool = typer.Option(AUGMENT.enabled, help="On-the-fly augmentation."),
    n_mfcc: int = typer.Option(0, min=0, help="0 = 40 log-mel bands (default, best on RAVDESS); 13-40 = MFCC coefficients."),
    deltas: int = typer.Option(0, min=0, max=2, help="0, 1 (+delta) or 2 (+delta-delta)."),
    normalisation: Optional[str] = typer.Option(None, help=NORMALISATION_HELP),
    dynamic_range_db: Optional[float] = typer.Option(None, min=0, help=DYNAMIC_RANGE_HELP),
    pcen_time_constant: Optional[float] = typer.Option(None, min=0, help=PCEN_HELP),
    seed: int = typer.Option(FIT.seed),
    limit: int = typer.Option(0, min=0, help="Use an even slice of at most N files per corpus (0 = all)."),
    estimate_from: List[Path] = typer.Option([], help=ESTIMATE_FROM_HELP),
    init_from: Optional[str] = typer.Option(None, help=INIT_FROM_HELP),
    runs_dir: Path = typer.Option(RUNS_DIR),
    name: Optional[str] = typer.Option(None, help="Run folder name (default: time stamp + corpora)."),
) -> None:
    """Train the compact LSTM; writes runs/<name>/ (model, metrics, report) and runs/latest."""
    with user_errors():  # the whole recipe is checked (train.config, edge.features) before TensorFlow loads
        if fold >= max(folds, 1):
            raise UsageError(f"--fold {fold} is outside --folds {folds}")
        config = recipe_from_options(locals())
        params = feature_params(config, n_mfcc, deltas, normalisation, dynamic_range_db, pcen_time_constant)
        import_tensorflow_quietly()
        from train.parent import starting_point
        from train.pipeline import run_training
        config, params, parent = starting_point(init_from, config, params)
        if (run_dir := run_training(train_request(locals(), params), config, parent)) is not None:
            print_summary(run_dir)


def train_request(options: dict[str, Any], params: "FeatureParams") -> "TrainRequest":
    """train's options that say which data, which split and where the run goes."""
    from train.recipe import TrainRequest

    return TrainRequest(data=tuple(options["data"]), corpus=options["corpus"], split=options["split"],
                        test_speakers=str_list(options["test_speakers"]), val_speakers=str_list(options["val_speakers"]),
                        folds=options["folds"], fold=options["fold"], validate=options["validate"],
                        limit_per_corpus=options["limit"], runs_dir=options["runs_dir"], name=options["name"],
                        params=params, estimate_from=tuple(options["estimate_from"]))


def recipe_from_options(options: dict[str, Any]) -> TrainConfig:
    """train's options into the recipe's dataclasses: each option sets the field of its own name (the
    comma-separated lists parsed; --augment is AugmentConfig.enabled); fields without an option keep
    train.config's defaults."""
    from dataclasses import fields

    def named(cls: type, **parsed: Any) -> dict[str, Any]:
        return {**{f.name: options[f.name] for f in fields(cls) if f.name in options}, **parsed}

    model = ModelConfig(**named(ModelConfig, lstm_units=int_list(options["lstm_units"], "--lstm-units"),
                                conv2d_channels=int_list(options["conv2d_channels"], "--conv2d-channels")))
    augment = AugmentConfig(**named(AugmentConfig, enabled=options["augment"]))
    return TrainConfig(**named(TrainConfig, model=model, augment=augment))


def feature_params(config: TrainConfig, n_mfcc: int, deltas: int, normalisation: Optional[str],
                   dynamic_range_db: Optional[float] = None,
                   pcen_time_constant: Optional[float] = None) -> "FeatureParams":
    """The features train's options ask for, checked on their own and against the recipe before TensorFlow
    loads (edge.features is numpy only); a normalisation, dynamic range or PCEN left out is edge.features'
    default."""
    from edge.features import FeatureParams, FeatureParamsError

    config.check_features(n_mfcc)
    optional: dict[str, Any] = {"normalisation": normalisation, "dynamic_range_db": dynamic_range_db,
                "pcen_time_constant": pcen_time_constant}
    try:
        params = FeatureParams(n_mfcc=n_mfcc, deltas=deltas,
                               **{name: value for name, value in optional.items() if value is not None})
    except FeatureParamsError as error:  # options that cannot go together: a usage error (exit 2)
        raise UsageError(str(error)) from None
    return params


@app.command(rich_help_panel=WORKSTATION_PANEL)
def crosscorpus(
    runs: List[Path] = typer.Argument(..., help="Training run folders (speaker-independent default splits)."),
    data: List[Path] = typer.Option(..., help="Corpus folders to test on (repeat): each corpus's last fifth "
                                    "of speakers is scored."),
    rooms: bool = typer.Option(True, help="Also score the test speakers re-recorded through simulated rooms."),
    out: Path = typer.Option(Path("runs/crosscorpus"), help="Folder for crosscorpus.json, .md and .png."),
) -> None:
    """Cross-corpus matrix: every run on every corpus's held-out speakers, six shared labels, clean and in rooms."""
    with user_errors():
        import_tensorflow_quietly()
        from train.crosscorpus import CrossCorpusRequest, cross_corpus, markdown
        from train.datasets import default_cache_dir

        for run in runs:
            if not (run / "model.keras").is_file() or not (run / "bundle.json").is_file():
                raise EdgeSerError(f"{run} is not a training run folder (no model.keras / bundle.json)")
        report = cross_corpus(CrossCorpusRequest(runs=tuple(runs), data=tuple(data), out_dir=out, rooms=rooms,
                                                 cache_dir=default_cache_dir()))
    typer.echo(markdown(report))
    typer.echo(f"reports: {out}/crosscorpus.md, crosscorpus.json, crosscorpus.png")


@app.command(rich_help_panel=WORKSTATION_PANEL)
def calibrate(
    runs: List[Path] = typer.Argument(..., help="Speaker-independent runs whose held-out predictions to fit on "
                                      "(e.g. runs/default-fold1 ... : together they hold out every speaker once)."),
    into: Optional[Path] = typer.Option(None, help="The run whose bundle gets the calibration (e.g. the final fit "
                                        "runs/default-model; default: the one run given)."),
    data: Optional[List[Path]] = typer.Option(None, help="Corpus folder(s), if they moved since training."),
) -> None:
    """Calibration on held-out speakers (one temperature, a confidence map or a gap map, whichever measures best):
    ECE, NLL, Brier before/after, risk-coverage; stored in the bundle."""
    with user_errors():
        import_tensorflow_quietly()
        from train.calibrate import calibrate as calibrate_runs
        from train.calibrate import markdown

        if into is None and len(runs) != 1:
            raise UsageError("with several runs, --into names the run whose bundle gets the calibration")
        target = into or runs[0]
        report = calibrate_runs(tuple(runs), target, tuple(data or ()))
    typer.echo(markdown(report))
    typer.echo(f"stored in {target}/bundle.json (convert it with `edge-ser quantize {target}`); "
               f"reports: {target}/calibration.md, calibration.json, reliability.png")


@app.command(rich_help_panel=WORKSTATION_PANEL)
def explore(
    data: List[Path] = typer.Argument(..., help="Corpus folder(s) or CSV manifest(s)."),
    corpus: str = corpus_option(),
    limit: int = typer.Option(0, min=0, help="Use an even slice of at most N files per corpus (0 = all)."),
    runs_dir: Path = typer.Option(RUNS_DIR),
    name: Optional[str] = typer.Option(None, help="Output folder name (default: explore-<corpora>)."),
) -> None:
    """Look at corpora before training: counts, waveforms, spectrograms, feature distributions per label."""
    with user_errors():
        from train.explore import explore as explore_corpora

        out_dir = runs_dir / (name or "explore-" + "-".join(p.name for p in data))
        summary = explore_corpora(tuple(data), out_dir, corpus, limit)
    for corpus_name, info in summary.items():
        labels = ", ".join(f"{label} {n}" for label, n in info.labels.items())
        typer.echo(f"{corpus_name}: {counted(info.files, 'file')}, {counted(info.speakers, 'speaker')}, "
                   f"{info.seconds.total / 60:.1f} min; {labels}")
    typer.echo(f"report: {out_dir}/report.md (plots beside it)")


@app.command(rich_help_panel=WORKSTATION_PANEL)
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
    report_download(report, dest)


def report_download(report: DownloadReport, dest: Path) -> None:
    for why in report.failed.values():
        typer.echo(f"failed: {why}", err=True)
    if report.not_published:
        typer.echo(f"not on the server (skipped): {counted(len(report.not_published), 'file')}, e.g. {report.not_published[0]}",
                   err=True)
    typer.echo(f"{dest}: {counted(len(report.kept), 'file')} downloaded and verified, {len(report.present)} already there, "
               f"{len(report.failed)} failed")
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)


@app.command(rich_help_panel=WORKSTATION_PANEL)
def quantize(
    run: Path = typer.Argument(Path("runs/latest"), help="Training run folder."),
    mode: str = typer.Option(DEFAULT_MODE, callback=one_of(MODES), metavar=choices_metavar(MODES), help=QUANTIZE_MODE_HELP),
    max_drift: float = typer.Option(DEFAULT_MAX_DRIFT_PP, callback=in_range(0),
                                    help="Fail (exit 3) when accuracy drops more than this many points."),
    force: bool = typer.Option(False, help="Write the model even when the drift gate fails."),
    data: Optional[List[Path]] = typer.Option(None, help="Corpus folder(s), if they moved since training."),
    output: Optional[Path] = typer.Option(None, help="Output file (default: RUN/model-MODE.tflite)."),
    int8_io: bool = typer.Option(False, help="int8 mode: int8 input/output tensors too."),
    layout: str = typer.Option(DEFAULT_LAYOUT, callback=one_of(LAYOUTS), metavar=choices_metavar(LAYOUTS),
                               help=LAYOUT_HELP),
) -> None:
    """Convert a run to TFLite and gate on accuracy drift against float on held-out speakers."""
    with user_errors():
        import_tensorflow_quietly()
        from convert.compare import quantize as quantize_run

        result = quantize_run(run, mode=mode, max_drift_pp=max_drift, force=force, data_paths=tuple(data or ()),
                              output=output, int8_io=int8_io, layout=layout)
    typer.echo(result.message)
    if not result.passed:
        raise typer.Exit(EXIT_DRIFT)


@app.command(rich_help_panel=WORKSTATION_PANEL)
def compare(
    run: Path = typer.Argument(Path("runs/latest"), help="Training run folder."),
    modes: str = typer.Option(",".join(MODES), callback=each_of(MODES), help=f"Comma-separated, of {', '.join(MODES)}."),
    data: Optional[List[Path]] = typer.Option(None, help="Corpus folder(s), if they moved since training."),
    int8_io: bool = typer.Option(False, help="int8 mode: int8 input/output tensors too."),
    json_output: bool = typer.Option(False, "--json", help="Print compare.json instead of the table."),
) -> None:
    """Float Keras vs every TFLite mode on the same held-out speakers: accuracy, agreement, size, latency."""
    with user_errors():
        import_tensorflow_quietly()
        from convert.compare import compare as compare_run
        from convert.report import format_table, table_rows

        chosen = str_list(modes)
        report = compare_run(run, chosen, tuple(data or ()), int8_io)
    if json_output:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    typer.echo(f"evaluated on {report.evaluated_on}")
    typer.echo(format_table(table_rows(report)))
    typer.echo(f"reports: {run}/compare.md, compare.json, compare.png")


def print_summary(run_dir: Path) -> None:
    from train.records import read_metrics

    metrics = read_metrics(run_dir)
    test = metrics.test
    typer.echo(f"run: {run_dir}")
    typer.echo(f"split: {metrics.split.description}")
    if not test:
        from train.report import score_lines

        for line in score_lines(metrics):
            typer.echo(line.replace("**", "").strip())
        return
    typer.echo(f"test: accuracy {test.accuracy:.3f}  UA {test.unweighted_accuracy:.3f}  "
               f"macro-F1 {test.macro_f1:.3f}  ({counted(test.n, 'utterance')}, {metrics.n_params:,} parameters)")
    for corpus, scores in metrics.per_corpus.items():
        if len(metrics.per_corpus) > 1 and scores:
            shared = metrics.shared_labels.get(corpus)
            typer.echo(f"  {corpus}: accuracy {scores.accuracy:.3f}  UA {scores.unweighted_accuracy:.3f} "
                       f"({counted(len(scores.labels), 'label')})"
                       + (f"  UA {shared.unweighted_accuracy:.3f} on the six shared labels" if shared else ""))
    typer.echo("recall: " + "  ".join(f"{k} {v['recall']:.2f}" for k, v in test.per_class.items()))
