"""Confidence that means what it says: calibration applied on the device (numpy only).

A network trained with cross-entropy is usually over-confident on speakers it never heard.
`edge-ser calibrate` fits, on held-out speakers' predictions, either one temperature T (every
probability vector p becomes softmax(log p / T)) or, when that measures better, a monotone map from
the network's top-1 probability to the accuracy held-out clips had at that probability; the vector
then gets the temperature that gives its top-1 exactly that value. Either way each vector is only
re-tempered, so its ranking (the label, the accuracy) never changes. It is applied to what is
reported: a clip's mean over its windows (`classify`) and the mean of the last windows (`listen`'s
smoothing). The bundle also carries the held-out risk-coverage curves `listen --target-accuracy`
picks a threshold from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROBABILITY_FLOOR = 1e-12  # log(0) guard: a probability the network rounded to zero stays tiny
BISECTION_STEPS = 40  # halvings of [1/200, 50] in log-temperature: far below float32 resolution
TEMPERATURE_SEARCH = (-np.log(50.0), np.log(200.0))  # log(1/T) range searched by `with_top_probability`


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
    """Each row re-tempered so that its largest probability is `top` (bisection on log 1/T): the
    argmax stays, the other probabilities keep their order."""
    p = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    log_p = np.log(np.maximum(p, PROBABILITY_FLOOR))
    target = np.clip(np.reshape(top, (-1, 1)), 1.0 / p.shape[1] + 1e-6, 1 - 1e-6)
    low, high = (np.full_like(target, bound) for bound in TEMPERATURE_SEARCH)
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        too_sharp = _tempered(log_p, np.exp(middle)).max(axis=-1, keepdims=True) > target
        high, low = np.where(too_sharp, middle, high), np.where(too_sharp, low, middle)
    out = _tempered(log_p, np.exp((low + high) / 2)).astype(np.float32)
    return out.reshape(np.shape(probabilities))


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    confidence_map: tuple[tuple[float, float], ...] = ()  # (network's top-1, held-out accuracy) knots

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of one vector or of rows of vectors (same label order, same argmax)."""
        if self.confidence_map:
            raw, accuracy = zip(*self.confidence_map)
            return with_top_probability(probabilities, np.interp(np.max(probabilities, axis=-1), raw, accuracy))
        return apply_temperature(probabilities, self.temperature)

    @classmethod
    def from_dict(cls, data: dict | None) -> "Calibration":
        data = data or {}
        knots = tuple((float(x), float(y)) for x, y in data.get("confidence_map") or ())
        return cls(float(data.get("temperature", 1.0)), knots)


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
