"""compare.json (its records) / compare.md / compare.png and the terminal table."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.records import ClassScores


@dataclass(frozen=True, kw_only=True)
class VariantScores:
    """A model's scores on the evaluation clips, and how far its probabilities are from the float model's."""

    metrics: ClassScores
    agreement: float  # share of clips given the float model's label
    max_abs_prob_diff: float
    mean_abs_prob_diff: float

    @property
    def accuracy(self) -> float:
        return self.metrics.accuracy


@dataclass(frozen=True, kw_only=True)
class ModeRow:
    """One model's entry in compare.json: its scores, file size, latency and the runtimes that load it."""

    scores: VariantScores
    size_bytes: int
    latency_ms: float
    loadable_by: dict[str, str] | None = None  # runtime -> "ok" or why not; None for the Keras model

    def to_dict(self) -> dict[str, Any]:
        row = {**self.scores.metrics.to_dict(), "agreement": self.scores.agreement,
               "max_abs_prob_diff": self.scores.max_abs_prob_diff, "mean_abs_prob_diff": self.scores.mean_abs_prob_diff,
               "size_bytes": self.size_bytes, "latency_ms": self.latency_ms}
        if self.loadable_by is not None:
            row["loadable_by"] = self.loadable_by
        return row


@dataclass(frozen=True, kw_only=True)
class CompareReport:
    """compare.json: the float Keras model and every converted mode, scored on the same clips."""

    split: str
    n_test: int
    evaluated_on: str
    float_model: ModeRow  # "float" in compare.json
    modes: dict[str, ModeRow]  # in the order they were asked for

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "n_test": self.n_test, "evaluated_on": self.evaluated_on,
                "float": self.float_model.to_dict(), **{mode: row.to_dict() for mode, row in self.modes.items()}}


def named_rows(report: CompareReport) -> list[tuple[str, ModeRow]]:
    """The float model first, then each mode in the order compared."""
    return [("float", report.float_model), *report.modes.items()]


def table_rows(report: CompareReport) -> list[list[str]]:
    rows = [["model", "acc", "UA", "macro-F1", "agree", "max|dp|", "size KiB", "ms/window", "drift pp"]]
    float_accuracy = report.float_model.scores.accuracy
    for name, row in named_rows(report):
        s, m = row.scores, row.scores.metrics
        rows.append([name if name != "float" else "float (Keras)", f"{m.accuracy:.4f}", f"{m.unweighted_accuracy:.4f}",
                     f"{m.macro_f1:.4f}", f"{s.agreement:.3f}", f"{s.max_abs_prob_diff:.4f}",
                     f"{row.size_bytes / 1024:.0f}", f"{row.latency_ms:.2f}",
                     f"{100 * (float_accuracy - m.accuracy):+.2f}"])
    return rows


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows)


def markdown(report: CompareReport) -> str:
    rows = table_rows(report)
    modes = list(report.modes)
    lines = ["# Float vs quantized", "", f"Evaluated on {report.evaluated_on or report.split}.",
             "Latency: one window, one thread, median of 100 (Keras: eager call, for reference only).", "",
             "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    lines += ["", "## Per-class recall", "", "| label | float | " + " | ".join(modes) + " |",
              "|---|---|" + "---|" * len(modes)]
    for label in report.float_model.scores.metrics.per_class:
        cells = [f"{row.scores.metrics.per_class.get(label, {}).get('recall', 0):.3f}" for _, row in named_rows(report)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    loadable = {mode: row.loadable_by or {} for mode, row in report.modes.items()}
    runtimes = list(loadable[modes[0]])
    lines += ["", "## Runtimes that load each file", "", "| mode | " + " | ".join(runtimes) + " |",
              "|---|" + "---|" * len(runtimes)]
    for mode in modes:
        lines.append(f"| {mode} | " + " | ".join(loadable[mode].values()) + " |")
    lines += ["", "![float vs int8 confusion](compare.png)", ""]
    return "\n".join(lines)


def write_compare_reports(run_dir: Path, report: CompareReport) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from train.report import plot_confusion

    (run_dir / "compare.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (run_dir / "compare.md").write_text(markdown(report))
    other = "int8" if "int8" in report.modes else list(report.modes)[-1]
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    path = run_dir / "compare.png"  # both panels go into it, saved here: plot_confusion draws into the axes given
    plot_confusion(report.float_model.scores.metrics.to_dict(), path, "float (Keras)", axes[0])
    plot_confusion(report.modes[other].scores.metrics.to_dict(), path, f"{other} (TFLite)", axes[1])
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
