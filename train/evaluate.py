"""Scores: clip probabilities are the mean over the clip's windows (as `edge-ser classify` does)."""
from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from train.records import ClassScores

PredictBatch = Callable[[np.ndarray], np.ndarray]  # (n, frames, features) -> (n, classes)


def predict_clips(predict_batch: PredictBatch, clips: list[np.ndarray], batch: int = 256) -> np.ndarray:
    """Mean probabilities per clip, predicting all windows of all clips in large batches."""
    if not clips:
        return np.zeros((0, 0), dtype=np.float32)
    windows = np.concatenate(clips)
    probabilities = np.concatenate([predict_batch(windows[i:i + batch]) for i in range(0, len(windows), batch)])
    bounds = np.cumsum([0] + [len(c) for c in clips])
    return np.stack([probabilities[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> ClassScores:
    """accuracy (= weighted accuracy, WA, in SER papers), unweighted accuracy (UA, mean per-class
    recall), macro-F1, per-class precision/recall/F1/support, one-vs-rest ROC-AUC, confusion matrix."""
    classes = list(range(len(labels)))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0)
    present = [c for c in classes if support[c] > 0]
    return ClassScores(
        n=int(len(y_true)),
        accuracy=float(accuracy_score(y_true, y_pred)),
        weighted_accuracy=float(accuracy_score(y_true, y_pred)),
        unweighted_accuracy=float(np.mean(recall[present])),
        macro_f1=float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        roc_auc_ovr=_roc_auc(y_true, probabilities, present),
        per_class={labels[c]: {"precision": float(precision[c]), "recall": float(recall[c]),
                               "f1": float(f1[c]), "support": int(support[c])} for c in present},
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        labels=list(labels),
    )


def _roc_auc(y_true: np.ndarray, probabilities: np.ndarray, present: list[int]) -> float | None:
    """Macro one-vs-rest AUC over the classes present in y_true (None when fewer than two)."""
    if len(present) < 2:
        return None
    onehot = np.eye(probabilities.shape[1])[y_true][:, present]
    return float(roc_auc_score(onehot, probabilities[:, present], average="macro"))


def unweighted_accuracy(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    return float(balanced_accuracy_score(y_true, probabilities.argmax(axis=1)))


def restricted_metrics(y_true: np.ndarray, probabilities: np.ndarray, labels: list[str], subset) -> ClassScores | None:
    """Scores over `subset` of the labels only: clips of other labels are left out and the prediction
    is the most probable label of the subset (a corpus's own label space, or the shared six)."""
    columns = [labels.index(label) for label in subset if label in labels]
    keep = np.isin(y_true, columns)
    if not keep.any():
        return None
    position = {column: i for i, column in enumerate(columns)}
    targets = np.array([position[t] for t in y_true[keep]], dtype=np.int64)
    return classification_metrics(targets, probabilities[keep][:, columns], [labels[c] for c in columns])
