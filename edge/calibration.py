"""Confidence that means what it says: temperature scaling, applied on the device (numpy only).

A network trained with cross-entropy is usually over-confident on speakers it never heard. One
scalar T, fitted on held-out speakers' predictions by `edge-ser calibrate` and stored in the bundle
(`calibration.temperature`), turns every window's probabilities p into softmax(log p / T): T > 1
softens them, the ranking (and so the label and the accuracy) stays the same. The bundle also
carries the held-out risk-coverage curve, from which `listen --target-accuracy` picks a threshold.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROBABILITY_FLOOR = 1e-12  # log(0) guard: a probability the network rounded to zero stays tiny


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) over the last axis; T = 1 returns p unchanged."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), PROBABILITY_FLOOR)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class CoveragePoint:
    threshold: float  # answer only when the top probability is at least this
    coverage: float  # share of held-out windows (or clips) answered
    accuracy: float  # accuracy on those


def threshold_for(curve: list[CoveragePoint], target_accuracy: float) -> CoveragePoint | None:
    """The lowest threshold (so the most coverage) whose held-out accuracy reaches the target."""
    reaching = [p for p in curve if p.accuracy >= target_accuracy and p.coverage > 0]
    return min(reaching, key=lambda p: p.threshold) if reaching else None


def curve_from_dicts(points: list[dict]) -> list[CoveragePoint]:
    return [CoveragePoint(float(p["threshold"]), float(p["coverage"]), float(p["accuracy"])) for p in points]
