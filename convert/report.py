"""compare.json / compare.md / compare.png and the terminal table."""
from __future__ import annotations

import json
from pathlib import Path

COLUMNS = ("accuracy", "unweighted_accuracy", "macro_f1", "agreement", "max_abs_prob_diff", "size_bytes", "latency_ms")


def table_rows(report: dict, modes: tuple[str, ...]) -> list[list[str]]:
    rows = [["model", "acc", "UA", "macro-F1", "agree", "max|dp|", "size KiB", "ms/window", "drift pp"]]
    float_accuracy = report["float"]["accuracy"]
    for name in ("float", *modes):
        s = report[name]
        rows.append([name if name != "float" else "float (Keras)", f"{s['accuracy']:.4f}", f"{s['unweighted_accuracy']:.4f}",
                     f"{s['macro_f1']:.4f}", f"{s['agreement']:.3f}", f"{s['max_abs_prob_diff']:.4f}",
                     f"{s['size_bytes'] / 1024:.0f}", f"{s['latency_ms']:.2f}",
                     f"{100 * (float_accuracy - s['accuracy']):+.2f}"])
    return rows


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows)


def markdown(report: dict, modes: tuple[str, ...]) -> str:
    rows = table_rows(report, modes)
    lines = ["# Float vs quantized", "", f"Evaluated on {report.get('evaluated_on') or report['split']}.",
             "Latency: one window, one thread, median of 100 (Keras: eager call, for reference only).", "",
             "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    lines += ["", "## Per-class recall", "", "| label | float | " + " | ".join(modes) + " |",
              "|---|---|" + "---|" * len(modes)]
    for label in report["float"]["per_class"]:
        cells = [f"{report[m]['per_class'].get(label, {}).get('recall', 0):.3f}" for m in ("float", *modes)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    runtimes = list(report[modes[0]]["loadable_by"])
    lines += ["", "## Runtimes that load each file", "", "| mode | " + " | ".join(runtimes) + " |",
              "|---|" + "---|" * len(runtimes)]
    for mode in modes:
        lines.append(f"| {mode} | " + " | ".join(report[mode]["loadable_by"].values()) + " |")
    lines += ["", "![float vs int8 confusion](compare.png)", ""]
    return "\n".join(lines)


def write_compare_reports(run_dir: Path, report: dict, modes: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from train.report import plot_confusion

    (run_dir / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    (run_dir / "compare.md").write_text(markdown(report, modes))
    other = "int8" if "int8" in modes else modes[-1]
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    plot_confusion(report["float"], None, "float (Keras)", axes[0])
    plot_confusion(report[other], None, f"{other} (TFLite)", axes[1])
    figure.tight_layout()
    figure.savefig(run_dir / "compare.png", dpi=110)
    plt.close(figure)
