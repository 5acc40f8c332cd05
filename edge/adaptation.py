"""Adapting a model to the voices, rooms or language it is deployed with: a small residual layer fitted
on the device from a few labelled clips (numpy only; docs/adaptation.md).

The network's summary h of a window (edge/model_file.py summary_tensors: the vector it pools over time,
and the mean and spread over time of the front-end's sequence its LSTM reads) and its log-probabilities
over the adapted labels feed one logistic layer whose output is added to those log-probabilities:

    z = log p + [x, log p, 1] @ W,   x = (h - mean) / scale,   adapted p = softmax(z)

W starts at zero, where the adapted model equals the base model, and an L2 penalty pulls it back there.
The penalty's strength is counted in clips (each clip weighs 1 in the loss, however many windows it
has), so one clip per label moves the model a little and many clips more. The objective is strictly
convex; accelerated gradient descent with the step its smoothness bound allows finds its minimum.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

PROBABILITY_FLOOR = 1e-6  # log(0) guard; an int8 network rounds small probabilities to exactly zero
DEFAULT_STRENGTH = 4.0  # the L2 penalty, in clips (docs/adaptation.md: chosen on held-out speakers)
STRENGTHS = (1.0, 4.0, 16.0, 64.0, 256.0)  # what cross-validation chooses among ("auto")
# With one clip per label there is nothing to cross-validate on: the pull stays strong (ONE_CLIP_STRENGTH) unless
# the base model gets fewer than LOST_BASE_UA of the clips right (as a corpus it never heard makes it), when it is
# looser (LOST_BASE_STRENGTH). Both chosen on the adaptation benchmark (docs/adaptation.md "One clip per label").
ONE_CLIP_STRENGTH = 256.0
LOST_BASE_UA = 0.3
LOST_BASE_STRENGTH = 16.0
CROSS_VALIDATION_FOLDS = 4
MAX_STEPS = 2000
GRADIENT_TOLERANCE = 1e-5  # per clip: stop when the gradient's largest entry is below this
METHOD = ("residual logistic layer on the network's summary (pooled vector, front-end mean and spread) and the "
          "base log-probabilities, L2-pulled to the base")
NOT_CALIBRATED = ("not calibrated: the base model's calibration does not carry over and a few clips are too "
                  "few to refit one; its probabilities are the adapted layer's own")


@dataclass(frozen=True, eq=False)
class AdaptedHead:
    """The fitted layer: `columns` are the adapted labels' indices among the network's outputs."""

    columns: tuple[int, ...]
    pooled_mean: np.ndarray  # (summary size,); the bundle keeps the name it had when the layer read the pooled vector
    pooled_scale: float
    weights: np.ndarray  # (summary size + len(columns) + 1, len(columns))

    def log_probabilities(self, probabilities: np.ndarray) -> np.ndarray:
        """The base log-probabilities over the adapted labels (renormalised, centred per row)."""
        kept = np.maximum(np.asarray(probabilities, dtype=np.float64)[..., list(self.columns)], PROBABILITY_FLOOR)
        log_p = np.log(kept / kept.sum(axis=-1, keepdims=True))
        return log_p - log_p.mean(axis=-1, keepdims=True)

    def design(self, summary: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs [x, log p, 1] per row, the log-probabilities the layer adds to)."""
        log_p = self.log_probabilities(probabilities)
        x = (np.asarray(summary, dtype=np.float64) - self.pooled_mean) / self.pooled_scale
        return np.concatenate([x, log_p, np.ones(log_p.shape[:-1] + (1,))], axis=-1), log_p

    def apply(self, summary: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """Adapted probabilities over all the network's outputs (zero for labels not adapted), row by row:
        softmax(log p + design @ weights) with the centring, the standardisation and the residual folded into
        one matrix (the device runs this after every window)."""
        columns, folded, bias = self._folded
        log_p = np.log(np.maximum(probabilities[..., columns], PROBABILITY_FLOOR))
        full = np.zeros(np.shape(probabilities), dtype=np.float32)
        full[..., columns] = softmax(np.concatenate((log_p, summary), axis=-1) @ folded + bias)
        return full

    @cached_property
    def _folded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(columns, the weights on [log p, raw summary], bias): log p centred by a matrix, the residual's
        identity added, the summary's mean and scale moved into the weights and bias."""
        size, labels = self.pooled_mean.size, len(self.columns)
        on_x, on_log_p, bias = self.weights[:size], self.weights[size:size + labels], self.weights[size + labels]
        centring = np.eye(labels) - 1.0 / labels
        folded = np.concatenate((centring @ (on_log_p + np.eye(labels)), on_x / self.pooled_scale))
        return np.array(self.columns), folded, bias - (self.pooled_mean / self.pooled_scale) @ on_x

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "pooled_mean": _rounded(self.pooled_mean),
                "pooled_scale": float(self.pooled_scale), "weights": _rounded(self.weights)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AdaptedHead":
        columns = tuple(int(c) for c in data["columns"])
        mean = np.asarray(data["pooled_mean"], dtype=np.float64)
        weights = np.asarray(data["weights"], dtype=np.float64)
        scale = float(data["pooled_scale"])
        if mean.ndim != 1 or weights.shape != (mean.size + len(columns) + 1, len(columns)) or len(columns) < 2:
            raise ValueError(f"weights {weights.shape} do not fit {mean.size} summary values and {len(columns)} labels")
        if not (np.isfinite(weights).all() and np.isfinite(mean).all() and np.isfinite(scale) and scale > 0):
            raise ValueError("non-finite weights or scale")
        return cls(columns, mean, scale, weights)


@dataclass(frozen=True, kw_only=True)
class Adaptation:
    """What `edge-ser adapt` did, carried in the adapted model's bundle (`edge-ser info` prints it)."""

    head: AdaptedHead
    labels: tuple[str, ...]  # the labels the adapted model answers among
    base_model: str  # the base model's file name
    base_sha256: str
    clips_per_label: dict[str, int] = field(default_factory=dict)
    strength: float = DEFAULT_STRENGTH
    strength_chosen: str = "given"  # or "cross-validated" (choose_strength)
    method: str = METHOD
    calibration: str = NOT_CALIBRATED

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "labels": list(self.labels), "base_model": self.base_model,
                "base_sha256": self.base_sha256, "clips_per_label": dict(self.clips_per_label),
                "strength": self.strength, "strength_chosen": self.strength_chosen, "calibration": self.calibration,
                "head": self.head.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Adaptation":
        return cls(head=AdaptedHead.from_dict(data["head"]), labels=tuple(str(x) for x in data["labels"]),
                   base_model=str(data["base_model"]), base_sha256=str(data["base_sha256"]),
                   clips_per_label={str(k): int(v) for k, v in data.get("clips_per_label", {}).items()},
                   strength=float(data.get("strength", DEFAULT_STRENGTH)),
                   strength_chosen=str(data.get("strength_chosen", "given")), method=str(data.get("method", METHOD)),
                   calibration=str(data.get("calibration", NOT_CALIBRATED)))


def summary_size(shapes: list[tuple[int, ...]]) -> int:
    """How many values `window_summary` makes of outputs of these shapes (batch dimension left out)."""
    return sum(shape[-1] * (1 if len(shape) == 1 else 2) for shape in shapes)


def window_summary(outputs: list[np.ndarray]) -> np.ndarray:
    """One window's vector for the adapted layer from the network's further outputs (edge/model_file.py
    summary_tensors): a vector as it is, a sequence (steps, values) as its mean and spread over time."""
    return np.concatenate([np.asarray(o) if np.ndim(o) == 1 else np.concatenate([o.mean(axis=0), o.std(axis=0)])
                           for o in outputs])


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _rounded(values: np.ndarray) -> Any:
    """Seven significant digits: the layer's output changes far less than the int8 network's own rounding."""
    return np.vectorize(lambda v: float(f"{v:.7g}"), otypes=[float])(values).tolist()


def start_head(columns: tuple[int, ...], summary: np.ndarray) -> AdaptedHead:
    """A zero layer (the base model) with the standardisation of these summaries: their mean, and
    one scale for all dimensions so that a dimension the network barely uses is not inflated."""
    summary = np.asarray(summary, dtype=np.float64)
    mean = summary.mean(axis=0)
    scale = float(np.sqrt(summary.var(axis=0).mean())) or 1.0
    return AdaptedHead(tuple(columns), mean, scale, np.zeros((summary.shape[1] + len(columns) + 1, len(columns))))


def fit_head(columns: tuple[int, ...], summary: np.ndarray, probabilities: np.ndarray, targets: np.ndarray,
             clips: np.ndarray, strength: float = DEFAULT_STRENGTH) -> AdaptedHead:
    """The layer fitted on windows: `targets` index `columns`, `clips` says which clip each window is from
    (a clip's windows share a weight of 1). Minimises the weighted cross-entropy + strength/2 |W|^2."""
    head = start_head(columns, summary)
    inputs, log_p = head.design(summary, probabilities)
    _, inverse, counts = np.unique(clips, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    onehot = np.eye(len(columns))[np.asarray(targets)]
    fitted = minimise(inputs, log_p, onehot, weights, strength)
    return AdaptedHead(head.columns, head.pooled_mean, head.pooled_scale, fitted)


def gradient(w: np.ndarray, inputs: np.ndarray, log_p: np.ndarray, onehot: np.ndarray, weights: np.ndarray,
             strength: float) -> np.ndarray:
    """Of sum_i weights_i * cross-entropy_i + strength/2 * |w|^2."""
    residual = (softmax(log_p + inputs @ w) - onehot) * weights[:, None]
    return inputs.T @ residual + strength * w


def minimise(inputs: np.ndarray, log_p: np.ndarray, onehot: np.ndarray, weights: np.ndarray,
             strength: float) -> np.ndarray:
    """Nesterov's accelerated gradient for a strongly convex function: step 1/L, with L from the softmax
    Hessian's bound (its curvature is at most 1/2 of x x^T per window) and the penalty's strength as mu."""
    smooth = 0.5 * float(np.linalg.eigvalsh(inputs.T @ (inputs * weights[:, None]))[-1]) + strength
    condition = np.sqrt(smooth / strength)
    momentum = (condition - 1) / (condition + 1)
    w = np.zeros((inputs.shape[1], onehot.shape[1]))
    ahead = w
    tolerance = GRADIENT_TOLERANCE * max(1.0, float(weights.sum()))
    for _ in range(MAX_STEPS):
        step = gradient(ahead, inputs, log_p, onehot, weights, strength)
        if np.abs(step).max() < tolerance:
            return ahead
        following = ahead - step / smooth
        ahead, w = following + momentum * (following - w), following
    return w


def clip_folds(targets: np.ndarray, clips: np.ndarray, folds: int) -> np.ndarray:
    """Each window's fold: a label's clips are dealt to the folds in turn, so every fold holds some of
    each label that has that many clips."""
    fold_of_clip: dict[int, int] = {}
    dealt: dict[int, int] = {}
    for clip, target in zip(clips.tolist(), targets.tolist()):
        if clip not in fold_of_clip:
            fold_of_clip[clip] = dealt.get(target, 0) % folds
            dealt[target] = dealt.get(target, 0) + 1
    return np.array([fold_of_clip[clip] for clip in clips.tolist()])


def choose_strength(columns: tuple[int, ...], summary: np.ndarray, probabilities: np.ndarray, targets: np.ndarray,
                    clips: np.ndarray, candidates: tuple[float, ...] = STRENGTHS) -> float:
    """The strength whose layers, fitted without one fold of the clips, give that fold's clips the highest
    mean log-probability of their label (a clip's windows averaged, as `classify` does); each label weighs
    the same. With one clip per label no fold can be left out: ONE_CLIP_STRENGTH, or LOST_BASE_STRENGTH where
    the base model gets fewer than LOST_BASE_UA of the clips right."""
    folds = cross_validation_folds(int(np.bincount(targets[np.unique(clips, return_index=True)[1]]).max()))
    if folds < 2:
        lost = base_clip_accuracy(columns, probabilities, targets, clips) < LOST_BASE_UA
        return LOST_BASE_STRENGTH if lost else ONE_CLIP_STRENGTH
    fold = clip_folds(targets, clips, folds)
    scores = np.zeros(len(candidates))
    for held in range(folds):
        train, test = fold != held, fold == held
        for i, strength in enumerate(candidates):
            head = fit_head(columns, summary[train], probabilities[train], targets[train], clips[train], strength)
            scores[i] += _held_out_log_likelihood(head, summary[test], probabilities[test], targets[test], clips[test])
    return candidates[int(np.argmax(scores))]


def cross_validation_folds(most_clips_of_a_label: int) -> int:
    """Folds the clips are dealt into: as many as the best-supplied label has clips, at most CROSS_VALIDATION_FOLDS
    (below 2 nothing can be left out)."""
    return min(CROSS_VALIDATION_FOLDS, most_clips_of_a_label)


def how_chosen(given: float | None, clips_per_label: dict[str, int]) -> str:
    """How the strength was chosen (choose_strength), as the adapted bundle records it."""
    if given:
        return "given"
    if cross_validation_folds(max(clips_per_label.values())) >= 2:
        return "cross-validated"
    return "one clip per label: by the base's accuracy on them"


def clip_means(values: np.ndarray, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each clip's first row, the mean of each clip's rows): a clip's windows averaged, as `classify` does."""
    numbers, first = np.unique(clips, return_index=True)
    return first, np.stack([values[clips == number].mean(axis=0) for number in numbers])


def base_clip_accuracy(columns: tuple[int, ...], probabilities: np.ndarray, targets: np.ndarray,
                       clips: np.ndarray) -> float:
    """The base model's unweighted accuracy on the clips (a clip's windows averaged, among the adapted labels)."""
    first, means = clip_means(probabilities[:, list(columns)], clips)
    return unweighted_accuracy(targets[first], means.argmax(axis=1))


def unweighted_accuracy(truth: np.ndarray, answers: np.ndarray) -> float:
    """The mean over the labels present in `truth` of the share of their items answered right."""
    return float(np.mean([np.mean(answers[truth == t] == t) for t in np.unique(truth)]))


def _held_out_log_likelihood(head: AdaptedHead, summary: np.ndarray, probabilities: np.ndarray, targets: np.ndarray,
                             clips: np.ndarray) -> float:
    first, means = clip_means(head.apply(summary, probabilities)[:, list(head.columns)], clips)
    truth = targets[first]
    label_counts = np.bincount(truth, minlength=len(head.columns))
    return float(sum(np.log(max(mean[t], PROBABILITY_FLOOR)) / label_counts[t] for mean, t in zip(means, truth)))
