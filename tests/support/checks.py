"""Checks several test modules share: JSON output lines, two ways of classifying agreeing window by
window, and running code in a fresh interpreter where the host side's libraries cannot be imported."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support.data import PROJECT


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def assert_same_decision(label: str, probabilities: dict, expected_label: str, expected: dict, tolerance: float) -> None:
    """Probabilities within `tolerance`; the same label unless the expected top two are closer than
    that (a near tie may flip by a difference the tolerance allows, nothing more)."""
    difference = max(abs(probabilities[k] - v) for k, v in expected.items())
    assert difference < tolerance, difference
    first, second = sorted(expected.values(), reverse=True)[:2]
    assert label == expected_label or first - second < 2 * tolerance, (label, expected_label, first, second)


def assert_same_windows(listened: list[dict], classified: list[dict], tolerance: float = 2e-3) -> None:
    by_start = {round(w["start"], 3): w for w in classified}
    for window in listened:
        expected = by_start[round(window["start"], 3)]
        assert_same_decision(window["window_label"], window["probabilities"], expected["label"],
                             expected["probabilities"], tolerance)


BLOCKED = ["tensorflow", "keras", "tf_keras", "librosa", "sklearn", "scipy", "matplotlib"]


def run_blocked(code: str) -> subprocess.CompletedProcess:
    guard = textwrap.dedent(f"""
        import sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None  # makes `import name` raise ImportError
    """)
    return subprocess.run([sys.executable, "-c", guard + textwrap.dedent(code)], capture_output=True, text=True, cwd=PROJECT)
