"""`edge-ser calibrate RUN... --into FINAL`: calibration fitted on held-out speakers.

The speaker-fold runs that give a final fit its estimate (`make default-model`'s folds) between them
hold out every speaker once. Their models' predictions on their own held-out speakers, over every
label the network has (what the device reports, not the per-corpus masked scores), are the honest
data to calibrate on: the training speakers' own predictions are over-confident by construction.
One temperature T (or a confidence map or gap map, when that measures better) is fitted on those clips with every
corpus weighing the same, however many clips it has: the device's microphone and voices belong to no
corpus of ours, and how many clips each corpus happens to have is a fact about our data, not about
theirs (measured: the corpus-weighted fit gives a lower ECE on a corpus left out of the fit, see
docs/design.md). The calibration goes into the final
run's bundle (and from there into every `.tflite` converted from it), with reliability figures
before and after, per corpus, a reliability diagram and the risk-coverage curves `listen
--target-accuracy` picks thresholds from. T is also cross-fitted (fitted on all folds but one,
scored on that one) to show the figures do not depend on fitting and scoring on the same clips.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edge.bundle import CalibrationReport, ModelBundleError
from edge.bundle_json import read_bundle_json, write_bundle_json
from edge.calibration import KEY_ACCURACIES, Calibration, CoveragePoint, apply_temperature, threshold_for, top_two_gap
from edge.discovery import DatasetError
from edge.plural import counted
from edge.settings import DEFAULT_SMOOTHING

ECE_BINS = 10  # the usual 10 equal-width bins of top-1 confidence (Guo et al. 2017)
TEMPERATURE_RANGE = (0.05, 20.0)
COVERAGE_THRESHOLDS = tuple(np.round(np.arange(0.0, 1.0, 0.02), 2))
MAP_KNOTS = 20  # bins of a map (confidence or gap), of equal corpus weight: hundreds of held-out clips each for the default model


@dataclass(frozen=True)
class HeldOut:
    """Uncalibrated window probabilities of held-out clips, as the runs' models gave them."""

    labels: list[str]
    windows: list[np.ndarray]  # per clip: (n_windows, n_labels)
    targets: np.ndarray  # label index per clip
    corpora: np.ndarray  # corpus per clip
    folds: np.ndarray  # which run held the clip out

    @cached_property
    def clip_means(self) -> np.ndarray:
        """Each clip's uncalibrated mean over its windows (computed once; every fit and score starts here)."""
        return np.stack([w.mean(axis=0) for w in self.windows])

    def subset(self, keep: np.ndarray) -> "HeldOut":
        index = np.flatnonzero(keep)
        return HeldOut(self.labels, [self.windows[i] for i in index], self.targets[index], self.corpora[index],
                       self.folds[index])


def held_out_predictions(run_dirs: tuple[Path, ...], data: tuple[Path, ...] = ()) -> HeldOut:
    """Every run's model on its own test speakers' clips (windows as the training report scores them)."""
    windows, targets, corpora, folds = [], [], [], []
    labels: list[str] | None = None
    for fold, run_dir in enumerate(run_dirs):
        run_labels, clips, run_targets, run_corpora, speakers, predict = _run_test_set(Path(run_dir), data)
        if labels is not None and run_labels != labels:
            raise DatasetError(f"{run_dir} has labels {run_labels}, the other runs {labels}")
        labels = run_labels
        counts = [len(c) for c in clips]
        flat = predict(np.concatenate(clips)) if clips else np.zeros((0, len(labels)))
        windows += np.split(flat, np.cumsum(counts)[:-1]) if clips else []
        targets += run_targets
        corpora += run_corpora
        folds += [fold] * len(clips) if len(run_dirs) > 1 else _speaker_folds(speakers)
    if labels is None or not windows:  # no runs at all, or runs without held-out clips
        raise DatasetError("the runs have no held-out clips")
    return HeldOut(labels, windows, np.array(targets), np.array(corpora), np.array(folds))


def _run_test_set(run_dir: Path, data: tuple[Path, ...]):
    import keras

    from train.recipe import eval_clips, load_datasets, make_split, request_from_bundle

    try:
        bundle = read_bundle_json(run_dir / "bundle.json")
    except ModelBundleError as error:
        raise DatasetError(f"{run_dir} is not a training run ({error})") from None
    if bundle.split is None or bundle.split.kind != "speaker" or not (run_dir / "model.keras").is_file():
        raise DatasetError(f"{run_dir}: calibrate needs speaker-independent runs with a model (e.g. the --folds runs)")
    request, seed = request_from_bundle(bundle, data)
    dataset = load_datasets(request)
    split = make_split(dataset, request, seed)
    labels = list(bundle.labels)
    test = [i for i in split.test if dataset.utterances[i].label in labels]
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)

    def predict(windows: np.ndarray) -> np.ndarray:
        return np.concatenate([model(windows[i:i + 512], training=False).numpy() for i in range(0, len(windows), 512)])

    return (labels, eval_clips(dataset, tuple(test), request.params, request.cache_dir),
            [labels.index(dataset.utterances[i].label) for i in test], [dataset.utterances[i].corpus for i in test],
            [dataset.utterances[i].speaker for i in test], predict)


SINGLE_RUN_FOLDS = 3


def _speaker_folds(speakers: list) -> list[int]:
    """One run's held-out speakers dealt into folds (for cross-fitting when there are no fold runs)."""
    order = sorted(set(speakers), key=str)
    return [order.index(s) % SINGLE_RUN_FOLDS for s in speakers]


def clip_probabilities(held: HeldOut, calibration: Calibration = Calibration()) -> np.ndarray:
    """Each clip's mean over its windows, calibrated (what `classify` reports)."""
    return calibration.apply(held.clip_means)


def smoothed_windows(held: HeldOut, calibration: Calibration = Calibration(),
                     smoothing: int = DEFAULT_SMOOTHING) -> tuple[np.ndarray, np.ndarray]:
    """What `listen` reports for each window: the mean of it and the windows before it (up to
    `smoothing`, within its clip), calibrated; and the clip's label for each."""
    rows = [w[max(0, i - smoothing + 1): i + 1].mean(axis=0) for w in held.windows for i in range(len(w))]
    return calibration.apply(np.stack(rows)), np.repeat(held.targets, [len(w) for w in held.windows])


def negative_log_likelihood(probabilities: np.ndarray, targets: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probabilities[np.arange(len(targets)), targets], 1e-12))))


def corpus_weights(held: HeldOut, weigh_corpora: bool = True) -> np.ndarray:
    """Each clip's weight in a fit: every corpus sums to the same, its clips share it equally (or,
    with `weigh_corpora` False, every clip 1: corpora weigh by their clip counts)."""
    if not weigh_corpora:
        return np.ones(len(held.targets))
    names, counts = np.unique(held.corpora, return_counts=True)
    per_clip = dict(zip(names.tolist(), (1.0 / counts).tolist()))
    return np.array([per_clip[c] for c in held.corpora.tolist()])


def fit_temperature(held: HeldOut, weigh_corpora: bool = True) -> Calibration:
    """The one temperature in TEMPERATURE_RANGE that minimises the clips' corpus-weighted negative log-likelihood."""
    from scipy.optimize import minimize_scalar

    means, weights, rows = held.clip_means, corpus_weights(held, weigh_corpora), np.arange(len(held.targets))

    def loss(log_t: float) -> float:
        picked = apply_temperature(means, float(np.exp(log_t)))[rows, held.targets]
        return float(-np.average(np.log(np.maximum(picked, 1e-12)), weights=weights))

    low, high = np.log(TEMPERATURE_RANGE)
    best = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-4}).x
    return Calibration(temperature=float(np.exp(best)))


def fit_confidence_map(held: HeldOut, knots: int = MAP_KNOTS, weigh_corpora: bool = True) -> Calibration:
    """Held-out accuracy as a monotone function of the network's top-1 probability."""
    return Calibration(confidence_map=monotone_map(held, held.clip_means.max(axis=1), knots, weigh_corpora))


def fit_gap_map(held: HeldOut, knots: int = MAP_KNOTS, weigh_corpora: bool = True) -> Calibration:
    """Held-out accuracy as a monotone function of log(p1 / p2), the two largest probabilities' ratio:
    unlike the top-1, it does not fall when the rest of the mass is spread over more labels."""
    return Calibration(gap_map=monotone_map(held, top_two_gap(held.clip_means), knots, weigh_corpora))


def monotone_map(held: HeldOut, statistic: np.ndarray, knots: int, weigh_corpora: bool) -> tuple[tuple[float, float], ...]:
    """The clips in `knots` bins of `statistic` of equal corpus weight, each bin's weighted (mean
    statistic, accuracy), made non-decreasing by isotonic regression (pool adjacent violators,
    weighted by bin weight)."""
    from sklearn.isotonic import IsotonicRegression

    weights = corpus_weights(held, weigh_corpora)
    correct = (held.clip_means.argmax(axis=1) == held.targets).astype(float)
    order = np.argsort(statistic)
    cumulative = np.cumsum(weights[order])
    cuts = np.searchsorted(cumulative, np.linspace(0, cumulative[-1], min(knots, len(order)) + 1)[1:-1])
    bins = [b for b in np.split(order, cuts) if len(b)]
    x = np.array([np.average(statistic[b], weights=weights[b]) for b in bins])
    y = np.array([np.average(correct[b], weights=weights[b]) for b in bins])
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(x, y, sample_weight=[weights[b].sum() for b in bins]).predict(x)
    return tuple((round(float(a), 5), round(float(b), 5)) for a, b in zip(x, fitted))


FITTERS = {"none": lambda held: Calibration(), "temperature": fit_temperature, "confidence map": fit_confidence_map,
           "gap map": fit_gap_map}


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of top-1 confidence that has clips: its edges, clip count, mean confidence and accuracy."""

    low: float
    high: float
    n: int
    confidence: float
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.low, "to": self.high, "n": self.n, "confidence": self.confidence, "accuracy": self.accuracy}


@dataclass(frozen=True)
class Reliability:
    """How well one set of probabilities' confidence matches its accuracy."""

    n: int
    ece: float
    nll: float
    brier: float
    accuracy: float
    mean_confidence: float
    bins: list[ReliabilityBin]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "ece": self.ece, "nll": self.nll, "brier": self.brier, "accuracy": self.accuracy,
                "mean_confidence": self.mean_confidence, "bins": [b.to_dict() for b in self.bins]}


@dataclass(frozen=True)
class CalibrationScores:
    """Reliability over every clip (`overall`, "all" in calibration.json) and per corpus."""

    overall: Reliability
    per_corpus: dict[str, Reliability]
    corpus_mean_ece: float

    def to_dict(self) -> dict[str, Any]:
        return {"all": self.overall.to_dict(), "per_corpus": {c: r.to_dict() for c, r in self.per_corpus.items()},
                "corpus_mean_ece": self.corpus_mean_ece}


def _scores_dict(scores: CalibrationScores | None) -> dict[str, Any]:
    """calibration.json has always written a score that could not be made (one fold, one corpus) as {}."""
    return scores.to_dict() if scores else {}


@dataclass(frozen=True)
class MethodReport:
    """One method fitted on every clip, and its scores: in-sample, cross-fitted, on a corpus left out."""

    calibration: Calibration
    after: CalibrationScores
    cross_fitted: CalibrationScores | None  # None: fewer than two folds
    unseen_corpus: CalibrationScores | None  # None: fewer than two corpora

    @property
    def scored(self) -> CalibrationScores:
        """The scores the method is judged by: cross-fitted where there are folds to cross-fit over."""
        return self.cross_fitted or self.after

    def to_dict(self) -> dict[str, Any]:
        return {"calibration": asdict(self.calibration), "after": self.after.to_dict(),
                "cross_fitted": _scores_dict(self.cross_fitted), "unseen_corpus": _scores_dict(self.unseen_corpus)}


@dataclass(frozen=True)
class SmoothedReliability:
    """Reliability of the smoothed windows `listen` reports, before and after the kept calibration."""

    before: Reliability
    after: Reliability


@dataclass(frozen=True)
class CalibrateReport:
    """calibration.json: the method kept, how every method measured, and the kept one's risk-coverage curves."""

    method: str
    calibration: Calibration
    fitted_on: str
    before: CalibrationScores
    methods: dict[str, MethodReport]
    smoothed_windows: SmoothedReliability
    risk_coverage: dict[str, list[CoveragePoint]]  # "clips" / "windows"

    @property
    def chosen(self) -> MethodReport:
        return self.methods[self.method]

    @property
    def coverage_at(self) -> dict[str, dict[float, CoveragePoint | None]]:
        """Per curve, the point `listen --target-accuracy` would pick for each of KEY_ACCURACIES."""
        return {kind: {a: threshold_for(points, a) for a in KEY_ACCURACIES} for kind, points in self.risk_coverage.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "calibration": asdict(self.calibration), "fitted_on": self.fitted_on,
                "before": self.before.to_dict(), "methods": {m: r.to_dict() for m, r in self.methods.items()},
                "smoothed_windows": {"before": self.smoothed_windows.before.to_dict(),
                                     "after": self.smoothed_windows.after.to_dict()},
                "risk_coverage": {kind: [asdict(p) for p in points] for kind, points in self.risk_coverage.items()},
                "coverage_at": {kind: {str(a): asdict(p) if p else None for a, p in points.items()}
                                for kind, points in self.coverage_at.items()}}


def reliability(probabilities: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """ECE (top-1, equal-width bins), NLL, Brier score, accuracy, mean confidence and the bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap = abs(float(correct[inside].mean()) - float(confidence[inside].mean()))
            ece += inside.mean() * gap
            table.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), int(inside.sum()),
                                        float(confidence[inside].mean()), float(correct[inside].mean())))
    one_hot = np.eye(probabilities.shape[1])[targets]
    return Reliability(n=int(len(targets)), ece=float(ece), nll=negative_log_likelihood(probabilities, targets),
                       brier=float(np.mean(np.sum((probabilities - one_hot) ** 2, axis=1))),
                       accuracy=float(correct.mean()), mean_confidence=float(confidence.mean()), bins=table)


def risk_coverage(probabilities: np.ndarray, targets: np.ndarray) -> list[CoveragePoint]:
    """Per threshold: the share answered (top probability >= threshold) and their accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    points = []
    for threshold in COVERAGE_THRESHOLDS:
        answered = confidence >= threshold
        points.append(CoveragePoint(float(threshold), float(answered.mean()),
                                    float(correct[answered].mean()) if answered.any() else 1.0))
    return points


def cross_fitted(held: HeldOut, fit, groups: np.ndarray | None = None) -> CalibrationScores | None:
    """Fitted on every fold but one and scored on that one: the figures without fitting on the scored
    clips. With `groups` = the clips' corpora, each corpus is scored by a fit that never saw it.
    None with fewer than two groups."""
    groups = held.folds if groups is None else groups
    if len(set(groups.tolist())) < 2:
        return None
    probabilities = np.zeros((len(held.targets), len(held.labels)))
    for scored, calibration in fold_fits(held, fit, groups):
        probabilities[scored] = clip_probabilities(held.subset(scored), calibration)
    return calibration_scores(probabilities, held)


def fold_fits(held: HeldOut, fit, groups: np.ndarray) -> Iterator[tuple[np.ndarray, Calibration]]:
    """For each group (a run, or a corpus): its clips, and `fit` on every other clip."""
    for group in sorted(set(groups.tolist())):
        scored = groups == group
        yield scored, fit(held.subset(~scored))


def calibration_scores(probabilities: np.ndarray, held: HeldOut) -> CalibrationScores:
    per_corpus = {c: reliability(probabilities[held.corpora == c], held.targets[held.corpora == c])
                  for c in sorted(set(held.corpora.tolist()))}
    return CalibrationScores(reliability(probabilities, held.targets), per_corpus,
                             float(np.mean([r.ece for r in per_corpus.values()])))


def calibration_report(held: HeldOut, run_names: list[str]) -> CalibrateReport:
    """Both methods fitted, scored in-sample, cross-fitted (by run, or for a single run by its held-out
    speakers dealt into three folds) and, with several corpora, on each corpus left out of the fit;
    the one with the lower cross-fitted ECE, averaged over corpora, is kept."""
    methods = {}
    for name, fit in FITTERS.items():
        calibration = fit(held)
        methods[name] = MethodReport(calibration, calibration_scores(clip_probabilities(held, calibration), held),
                                     cross_fitted(held, fit), cross_fitted(held, fit, held.corpora))
    chosen = min(methods, key=lambda m: methods[m].scored.corpus_mean_ece)
    calibration = methods[chosen].calibration
    windows, window_targets = smoothed_windows(held, calibration)
    return CalibrateReport(
        method=chosen, calibration=calibration,
        fitted_on=f"{counted(len(held.targets), 'held-out clip')} of {counted(len(run_names), 'speaker-fold run')} "
                  f"({', '.join(run_names)}), every label the network has",
        before=calibration_scores(clip_probabilities(held), held), methods=methods,
        smoothed_windows=SmoothedReliability(reliability(*smoothed_windows(held)), reliability(windows, window_targets)),
        risk_coverage={"clips": risk_coverage(clip_probabilities(held, calibration), held.targets),
                       "windows": risk_coverage(windows, window_targets)})


def bundle_report(report: CalibrateReport) -> CalibrationReport:
    """What the model bundle carries beside the calibration: headline figures and the risk-coverage curves."""
    scored = report.chosen.scored
    unseen = report.chosen.unseen_corpus
    return CalibrationReport(
        method=report.method, fitted_on=report.fitted_on, ece_before=round(report.before.overall.ece, 5),
        ece_after=round(scored.overall.ece, 5),
        ece_after_per_corpus={c: round(r.ece, 5) for c, r in scored.per_corpus.items()},
        ece_unseen_corpus={c: round(r.ece, 5) for c, r in unseen.per_corpus.items()} if unseen else {},
        risk_coverage={kind: tuple(CoveragePoint(round(p.threshold, 4), round(p.coverage, 4), round(p.accuracy, 4))
                                   for p in points) for kind, points in report.risk_coverage.items()})


def write_calibration(folder: Path, report: CalibrateReport) -> None:
    """calibration.json, calibration.md and reliability.png (reliability and risk-coverage) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "calibration.json").write_text(json.dumps(report.to_dict(), indent=2))
    (folder / "calibration.md").write_text(markdown(report))
    _plots(folder, report)


def markdown(report: CalibrateReport) -> str:
    lines = [f"# Calibration: {report.method}", "", f"Fitted on {report.fitted_on}. Each method is scored on "
             "the clips it was fitted on and cross-fitted (fitted without the scored fold); the lower cross-fitted "
             "ECE, averaged over corpora, is kept. Every fit weighs each corpus the same. ECE: 10 equal-width bins "
             "of top-1 confidence.", "",
             "| held-out clips | n | accuracy | confidence | ECE before | " + " | ".join(
                 f"ECE {m} | {m} cross-fitted" for m in report.methods) + " | NLL before | NLL after |",
             "|---|---|---|---|---|" + "---|---|" * len(report.methods) + "---|---|"]
    rows = [("all", report.before.overall, None)] + [(c, r, c) for c, r in report.before.per_corpus.items()]
    for name, before, corpus in rows:
        cells = []
        for method in report.methods.values():
            crossed = method.cross_fitted
            cross = _pick(crossed, corpus).ece if crossed else float("nan")
            cells.append(f"{_pick(method.after, corpus).ece:.3f} | {cross:.3f}")
        after = _pick(report.chosen.after, corpus)
        lines.append(f"| {name} | {before.n} | {before.accuracy:.3f} | {before.mean_confidence:.3f} | "
                     f"{before.ece:.3f} | " + " | ".join(cells) + f" | {before.nll:.3f} | {after.nll:.3f} |")
    unseen = report.chosen.unseen_corpus
    if unseen:
        lines += ["", f"Each corpus scored by a {report.method} fitted without it (as a corpus the device meets would "
                  "be): ECE " + ", ".join(f"{c} {r.ece:.3f}" for c, r in unseen.per_corpus.items()) + "."]
    smoothed = report.smoothed_windows
    lines += ["", f"Smoothed windows (listen: the mean of the last {DEFAULT_SMOOTHING} windows within a held-out clip, "
              f"calibrated after smoothing): ECE {smoothed.before.ece:.3f} -> {smoothed.after.ece:.3f} "
              f"({smoothed.after.n} windows).",
              "", "| answered when confident (calibrated) | to reach accuracy | threshold | coverage |", "|---|---|---|---|"]
    for kind, points in report.coverage_at.items():
        for accuracy, point in points.items():
            lines.append(f"| {kind} | {accuracy:.0%} | " + (f"{point.threshold:.2f} | {point.coverage:.1%} |"
                                                          if point else "not reached | 0 |"))
    return "\n".join(lines) + "\n"


def _pick(scores: CalibrationScores, corpus: str | None) -> Reliability:
    """One corpus's reliability, or every clip's when `corpus` is None."""
    return scores.overall if corpus is None else scores.per_corpus[corpus]


def _plots(folder: Path, report: CalibrateReport) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    curves = [("before", report.before.overall, "o--")]
    curves += [(name, method.after.overall, "o-") for name, method in report.methods.items()]
    for name, scores, style in curves:
        axes[0].plot([b.confidence for b in scores.bins], [b.accuracy for b in scores.bins], style,
                     label=f"{name} (ECE {scores.ece:.3f})")
    axes[0].plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    axes[0].set(xlabel="confidence (top-1)", ylabel="accuracy", title="reliability, held-out clips", xlim=(0, 1), ylim=(0, 1))
    axes[0].legend()
    for kind, points in report.risk_coverage.items():
        axes[1].plot([p.coverage for p in points], [p.accuracy for p in points], "-", label=kind)
    axes[1].set(xlabel="coverage (share answered)", ylabel="accuracy of the answered", title="risk-coverage (calibrated)",
                xlim=(0, 1), ylim=(0, 1))
    axes[1].legend()
    figure.tight_layout()
    figure.savefig(folder / "reliability.png", dpi=110)
    plt.close(figure)


def calibrate(run_dirs: tuple[Path, ...], into: Path, data: tuple[Path, ...] = ()) -> CalibrateReport:
    """The verb: fit, write the reports into `into` and store the calibration in its bundle.json."""
    bundle_path = into / "bundle.json"
    try:
        bundle = read_bundle_json(bundle_path)
    except ModelBundleError as error:
        raise DatasetError(f"--into {into} is not a training run ({error})") from None
    held = held_out_predictions(run_dirs, data)
    if held.labels != list(bundle.labels):
        raise DatasetError(f"--into {into} has labels {list(bundle.labels)}, the calibration runs {held.labels}")
    report = calibration_report(held, [Path(r).name for r in run_dirs])
    write_calibration(into, report)
    write_bundle_json(bundle_path, replace(bundle, calibration=report.calibration, calibration_report=bundle_report(report)))
    return report
