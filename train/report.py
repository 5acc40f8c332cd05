"""Run reports: metrics.json (for scripts), report.md (for people), PNG plots beside them."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from edge.bundle import Bundle  # noqa: E402
from edge.plural import counted  # noqa: E402
from train.records import RunMetrics  # noqa: E402


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_reports(folder: Path, metrics: RunMetrics, history: dict, bundle: Bundle) -> None:
    write_json(folder / "metrics.json", metrics.to_dict())
    write_json(folder / "history.json", history)
    write_json(folder / "bundle.json", bundle.to_dict())
    write_json(folder / "feature_params.json", bundle.params.to_dict())
    if metrics.test:
        plot_confusion(metrics.test.to_dict(), folder / "confusion.png", "Test confusion matrix (rows: true)")
    plot_curves(history, metrics.best_epoch, folder / "curves.png")
    (folder / "report.md").write_text(markdown_report(metrics, bundle))


def plot_confusion(scores: dict, path: Path, title: str, axis=None) -> None:
    """Row-normalised confusion matrix with counts; draws into `axis` when given."""
    matrix = np.array(scores["confusion_matrix"], dtype=float)
    labels = scores["labels"]
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    own = axis is None
    if own:
        figure, axis = plt.subplots(figsize=(1 + 0.8 * len(labels), 0.8 + 0.7 * len(labels)))
    axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title, fontsize=10)
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            colour = "white" if rates[row, column] > 0.5 else "black"
            axis.text(column, row, f"{int(count)}", ha="center", va="center", color=colour, fontsize=8)
    if own:
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)


def plot_curves(history: dict, best_epoch: int | None, path: Path) -> None:
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = np.arange(1, len(history["loss"]) + 1)
    loss_axis.plot(epochs, history["loss"], label="train loss (augmented)")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_title("Loss")
    loss_axis.legend()
    accuracy_axis.plot(epochs, history["accuracy"], label="train accuracy (augmented)")
    if history.get("val_ua"):
        accuracy_axis.plot(epochs, history["val_ua"], label="validation UA")
        accuracy_axis.plot(epochs, history["val_accuracy"], label="validation accuracy", alpha=0.6)
    if best_epoch:
        accuracy_axis.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
    accuracy_axis.set_xlabel("epoch")
    accuracy_axis.set_ylim(0, 1)
    accuracy_axis.set_title("Accuracy")
    accuracy_axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown_report(metrics: RunMetrics, bundle: Bundle) -> str:
    lines = [
        "# edge-ser training run",
        "",
        f"**Split:** {metrics.split.description}  ",
        *score_lines(metrics),
        f"**Model:** {metrics.n_params:,} parameters ({metrics.float32_bytes / 1024:.0f} KiB as float32), "
        f"best epoch {metrics.best_epoch} of {metrics.epochs_run}, trained in {metrics.train_seconds:.0f} s on "
        f"{metrics.device}",
    ]
    if metrics.test:
        lines += ["", "## Per class (test)", "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |"
                  for label, s in metrics.test.per_class.items()]
    if metrics.estimate:
        lines += ["", "## Held-out runs behind the estimate", "", "| run | held-out speakers | n | accuracy | UA | macro-F1 |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r.run} | {', '.join(r.test_speakers)} | {r.n} | {r.accuracy:.3f} | "
                  f"{r.unweighted_accuracy:.3f} | {r.macro_f1:.3f} |" for r in metrics.estimate.runs]
    if len(metrics.per_corpus) > 1:
        lines += ["", "## Per corpus (test)", "", "| corpus | n | accuracy | UA | macro-F1 |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {s.n} | {s.accuracy:.3f} | {s.unweighted_accuracy:.3f} | {s.macro_f1:.3f} |"
                  for name, s in metrics.per_corpus.items() if s]
    lines += ["", "## Data", "", "| corpus | files | speakers | licence |", "|---|---|---|---|"]
    lines += [f"| {name} | {c.files} | {c.speakers} | {c.licence} |" for name, c in metrics.corpora.items()]
    if metrics.skipped_files:
        lines += ["", f"Skipped {counted(len(metrics.skipped_files), 'file')}; see `metrics.json`."]
    lines += ["", "## Features", "", "```json", json.dumps(bundle.params.to_dict(), indent=1), "```", "",
              *(["![confusion matrix](confusion.png)", ""] if metrics.test else []), "![training curves](curves.png)", ""]
    return "\n".join(lines)


def score_lines(metrics: RunMetrics) -> list[str]:
    """The headline: the test score, or for a final fit its held-out estimate and the (seen) training score."""
    test, estimate, seen = metrics.test, metrics.estimate, metrics.seen
    if test:
        return [f"**Test:** {test.n} utterances — accuracy (WA) {test.accuracy:.3f}, unweighted accuracy (UA) "
                f"{test.unweighted_accuracy:.3f}, macro-F1 {test.macro_f1:.3f}, ROC-AUC (OvR) "
                f"{_num(test.roc_auc_ovr)}  "]
    lines = [f"**Held-out estimate:** accuracy {estimate.accuracy:.3f} ± {estimate.std['accuracy']:.3f}, UA "
             f"{estimate.unweighted_accuracy:.3f} ± {estimate.std['unweighted_accuracy']:.3f}, macro-F1 "
             f"{estimate.macro_f1:.3f} — {estimate.source}  " if estimate else
             "**Held-out estimate:** none (train with --estimate-from RUN... to record one)  "]
    for corpus, scores in (estimate.per_corpus if estimate else {}).items():
        lines.append(f"- {corpus}: UA {scores.unweighted_accuracy:.3f} over its {len(scores.labels)} labels "
                     f"({scores.n} clips, {scores.runs} runs)  ")
    if seen:
        lines.append(f"**Seen speakers (training data, NOT an estimate):** accuracy {seen.accuracy:.3f}, "
                     f"UA {seen.unweighted_accuracy:.3f} on {seen.n} utterances  ")
    return lines


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
