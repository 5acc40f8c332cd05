"""What the calibration benchmarks share: the default model's speaker-fold runs as their input unless
named, and a Markdown report written to runs/bench/<name>.md and printed."""
from __future__ import annotations

import argparse
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
ECE_NOTE = "ECE, 10 equal-width bins of top-1 confidence, held-out clips, every label the network has."


def fold_runs_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose positional `runs` default to runs/default-fold* (the folds make default-model trains)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, default=sorted((PROJECT / "runs").glob("default-fold*")))
    return parser


def run_names(runs: list[Path] | tuple[Path, ...]) -> str:
    return ", ".join(run.name for run in runs)


def write_report(name: str, lines: list[str]) -> Path:
    text = "\n".join(lines) + "\n"
    out = PROJECT / "runs" / "bench" / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return out
