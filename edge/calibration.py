"""Confidence that means what it says: calibration applied on the device (numpy only).

A network trained with cross-entropy is usually over-confident on speakers it never heard.
`edge-ser calibrate` fits, on held-out speakers' predictions, either one temperature T (every
probability vector p becomes softmax(log p / T)) or, when that measures better, a monotone map to
the accuracy held-out clips had from the network's top-1 probability (confidence map) or from the
log-ratio of its two largest probabilities (gap map); the vector then gets the temperature that gives
its top-1 exactly that value. Either way each vector is only
re-tempered, so its ranking (the label, the accuracy) never changes. It is applied to what is
reported: a clip's mean over its windows (`classify`) and the mean of the last windows (`listen`'s
smoothing). The bundle also carries the held-out risk-coverage curves `listen --target-accuracy`
picks a threshold from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KEY_ACCURACIES = (0.5, 0.55, 0.6, 0.7, 0.8)  # held-out accuracies whose threshold and coverage `info` and calibrate report
PROBABILITY_FLOOR = 1e-12  # log(0) guard: a probability the network rounded to zero stays tiny
NEWTON_STEPS = 12  # enough for the top-1 to land on its target (up to 0.999) far inside any calibration error


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) over the last axis; T = 1 returns p unchanged."""
    if temperature == 1.0:
        return probabilities
    return _tempered(np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), PROBABILITY_FLOOR)),
                     np.full(np.shape(probabilities)[:-1] + (1,), 1.0 / temperature)).astype(np.float32)


def _tempered(log_p: np.ndarray, inverse_t: np.ndarray) -> np.ndarray:
    z = log_p * inverse_t
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def with_top_probability(probabilities: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Each row re-tempered so that its largest probability is `top`: the argmax stays, the others keep
    their order. With r = p / max(p), the top-1 of softmax(log p / T) is 1 / sum(r ** b), b = 1/T; solve
    sum(r ** b) = 1/top for b by Newton's method from b = 0 (the sum is convex and falling in b, so
    the steps approach the root from below and never overshoot)."""
    p = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    log_p = np.log(np.maximum(p, PROBABILITY_FLOOR))
    log_r = log_p - log_p.max(axis=-1, keepdims=True)
    goal = 1.0 / np.clip(np.reshape(top, (-1, 1)), 1.0 / p.shape[1] + 1e-6, 1 - 1e-6)
    b = np.zeros_like(goal)
    for _ in range(NEWTON_STEPS):
        powers = np.exp(b * log_r)
        excess = powers.sum(axis=-1, keepdims=True) - goal
        slope = (log_r * powers).sum(axis=-1, keepdims=True)
        b = b - np.divide(excess, slope, out=np.zeros_like(b), where=slope < 0)
    out = np.exp(b * log_r)
    return (out / out.sum(axis=-1, keepdims=True)).astype(np.float32).reshape(np.shape(probabilities))


def restricted(probabilities: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The probabilities of the labels `keep` indexes, renormalised to sum to 1: the network's answer
    when it may only choose among them (`--labels`). Applied after calibration; measured on held-out
    speakers by benchmarks/label_subset.py (docs/models.md "Fewer labels")."""
    kept = np.maximum(np.asarray(probabilities, dtype=np.float64)[..., keep], PROBABILITY_FLOOR)
    return (kept / kept.sum(axis=-1, keepdims=True)).astype(np.float32)


def label_indices(labels: tuple[str, ...], wanted: tuple[str, ...]) -> np.ndarray:
    """Where each of `wanted` is in `labels`, in the model's label order; ValueError names what is wrong."""
    unknown = [w for w in wanted if w not in labels]
    if unknown:
        raise ValueError(f"this model has no label {', '.join(map(repr, unknown))}; its labels: {', '.join(labels)}")
    if len(set(wanted)) < 2:
        raise ValueError("--labels needs at least two different labels to choose between")
    return np.array([i for i, label in enumerate(labels) if label in wanted])


def top_two_gap(probabilities: np.ndarray) -> np.ndarray:
    """log(p1 / p2) of the two most probable labels (the gap between their logits): how far the answer
    is ahead of its runner-up, whatever the other labels share."""
    p = np.asarray(probabilities, dtype=np.float64)
    top_two = np.log(np.maximum(-np.partition(-p, 1, axis=-1)[..., :2], PROBABILITY_FLOOR))
    return top_two[..., 0] - top_two[..., 1]


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    confidence_map: tuple[tuple[float, float], ...] = ()  # (network's top-1, held-out accuracy) knots
    gap_map: tuple[tuple[float, float], ...] = ()  # (top_two_gap, held-out accuracy) knots

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of one vector or of rows of vectors (same label order, same argmax)."""
        if self.gap_map:
            return _mapped(probabilities, top_two_gap(probabilities), self.gap_map)
        if self.confidence_map:
            return _mapped(probabilities, np.max(probabilities, axis=-1), self.confidence_map)
        return apply_temperature(probabilities, self.temperature)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Calibration":
        data = data or {}
        return cls(float(data.get("temperature", 1.0)), _knots(data.get("confidence_map")), _knots(data.get("gap_map")))


def _mapped(probabilities: np.ndarray, statistic: np.ndarray, knots: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Each vector re-tempered so that its top-1 is the map's accuracy at its `statistic`."""
    x, accuracy = zip(*knots)
    return with_top_probability(probabilities, np.interp(statistic, x, accuracy))


def _knots(pairs: Any) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in pairs or ())


@dataclass(frozen=True)
class CoveragePoint:
    threshold: float  # answer only when the top probability is at least this
    coverage: float  # share of held-out windows (or clips) answered
    accuracy: float  # accuracy on those


def threshold_for(curve: list[CoveragePoint], target_accuracy: float) -> CoveragePoint | None:
    """The lowest threshold (so the most coverage) whose held-out accuracy reaches the target."""
    reaching = [p for p in curve if p.accuracy >= target_accuracy and p.coverage > 0]
    return min(reaching, key=lambda p: p.threshold) if reaching else None


def curve_from_dicts(points: list[dict[str, Any]]) -> list[CoveragePoint]:
    return [CoveragePoint(float(p["threshold"]), float(p["coverage"]), float(p["accuracy"])) for p in points]
