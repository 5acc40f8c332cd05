"""What edge-ser reports from a model's probabilities: the bundle's calibration, then only the labels it
answers among (--labels, or an adapted model's own labels), the top label, and the one rounding rule of
every JSON output.

The model (edge/runtime.py) gives the network's probabilities; `classify` and `listen` (edge/classify.py,
edge/stream.py) average or smooth them, then report them through `Answers`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.calibration import Calibration, label_indices, restricted
from edge.errors import UsageError

# Confidences and probabilities in every JSON output (classify --json and --windows, listen --json and --save-dir):
# six decimals, about what a float32 carries, so equal numbers print equal everywhere.
JSON_DECIMALS = 6


def rounded(record: dict[str, Any]) -> dict[str, Any]:
    """A record for JSON with its `confidence` and `probabilities` rounded by the one rule (JSON_DECIMALS)."""
    out = dict(record)
    if "confidence" in out:
        out["confidence"] = round(float(out["confidence"]), JSON_DECIMALS)
    if "probabilities" in out:
        out["probabilities"] = {label: round(float(p), JSON_DECIMALS) for label, p in out["probabilities"].items()}
    return out


def labelled(probabilities: np.ndarray, labels: tuple[str, ...]) -> tuple[str, float, dict[str, float]]:
    """(top label, its probability, label -> probability)."""
    best = int(np.argmax(probabilities))
    return labels[best], float(probabilities[best]), {label: float(p) for label, p in zip(labels, probabilities)}


@dataclass(frozen=True, eq=False)
class Answers:
    """How a model's probabilities (a clip's mean, a smoothed window) are reported: the bundle's calibration,
    then, when the model answers among some of its labels only, those labels' shares renormalised."""

    labels: tuple[str, ...]  # the labels answered among, in the model's order
    calibration: Calibration
    kept: np.ndarray | None = None  # their indices among the network's outputs; None: every output

    @classmethod
    def of(cls, bundle: Bundle, asked: tuple[str, ...] = ()) -> "Answers":
        """`asked` (--labels; () = every label), or an adapted model's own labels: an adapted model answers
        among those only. A label the model cannot answer is a UsageError."""
        adapted = bundle.adaptation.labels if bundle.adaptation else ()
        if adapted and not set(asked) <= set(adapted):
            raise UsageError(f"--labels names {', '.join(sorted(set(asked) - set(adapted)))}, which this "
                             f"adapted model was not adapted to (its labels: {', '.join(adapted)})")
        if not (asked or adapted):
            return cls(bundle.labels, bundle.calibration)
        try:
            kept = label_indices(bundle.labels, asked or adapted)
        except ValueError as error:
            raise UsageError(str(error)) from None
        return cls(tuple(bundle.labels[i] for i in kept), bundle.calibration, kept)

    def calibrated(self, probabilities: np.ndarray) -> np.ndarray:
        """The calibration applied, then only the answered labels' shares, renormalised (one per `labels`)."""
        calibrated = self.calibration.apply(probabilities)
        return calibrated if self.kept is None else restricted(calibrated, self.kept)

    def answer(self, probabilities: np.ndarray) -> tuple[str, float, dict[str, float]]:
        """What is reported for `probabilities`: (top label, its probability, label -> probability)."""
        return labelled(self.calibrated(probabilities), self.labels)
