"""The training losses over AugmentedWindows' `y` (train.batches): mixup-weighted cross-entropy within each
corpus's labels (or over all labels), label smoothing, distillation toward the teacher's soft labels and, with
feature distillation, toward its embedding."""
from __future__ import annotations

import keras

from train.batches import MASK_FROM
from train.config import TrainConfig

EPSILON = 1e-7  # keeps log() finite when a probability underflows


def mixed(loss_of_target, smoothing: float = 0.0):
    """The loss of a mixed example: its weight times the loss of its target, plus the partner's."""
    def loss(y, probabilities):
        weight, mask = y[:, 2], y[:, MASK_FROM:MASK_FROM + probabilities.shape[-1]]
        return (weight * loss_of_target(y[:, 0], mask, probabilities, smoothing)
                + (1 - weight) * loss_of_target(y[:, 1], mask, probabilities, smoothing))
    loss.__name__ = loss_of_target.__name__
    return loss


def masked_crossentropy(target, mask, probabilities, smoothing: float = 0.0):
    """-log p(target | the labels the clip's corpus defines): probabilities renormalised over the
    mask, so a CREMA-D clip never teaches "not surprise" (CREMA-D has no surprise). With smoothing s,
    (1 - s) of that plus s times the mean -log p over the mask's labels."""
    log_q = masked_log_probabilities(mask, probabilities)
    loss = -keras.ops.take_along_axis(log_q, keras.ops.cast(target, "int32")[:, None], axis=1)[:, 0]
    if not smoothing:
        return loss
    spread = -keras.ops.sum(log_q * mask, axis=1) / keras.ops.sum(mask, axis=1)
    return (1 - smoothing) * loss + smoothing * spread


def masked_log_probabilities(mask, probabilities):
    """log p(label | the labels of the mask): the probabilities renormalised over the mask."""
    masked = probabilities * mask
    return keras.ops.log(masked + EPSILON) - keras.ops.log(keras.ops.sum(masked, axis=1, keepdims=True) + EPSILON)


def distilled(hard_loss, teacher_weight: float):
    """(1 - w) x `hard_loss` (the clip's own, smoothed, label) + w x the cross-entropy against the teacher's
    soft labels (y's columns after the mask), both over the labels the clip's corpus defines."""
    def loss(y, probabilities):
        labels = probabilities.shape[-1]
        mask, soft = y[:, MASK_FROM:MASK_FROM + labels], y[:, MASK_FROM + labels:]
        soft_loss = -keras.ops.sum(soft * masked_log_probabilities(mask, probabilities), axis=1)
        return (1 - teacher_weight) * hard_loss(y, probabilities) + teacher_weight * soft_loss
    loss.__name__ = hard_loss.__name__
    return loss


def softmax_crossentropy(target, mask, probabilities, smoothing: float = 0.0):
    """Plain cross-entropy over every label (the mask is ignored); smoothing spreads over all labels."""
    log_p = keras.ops.log(probabilities + EPSILON)
    loss = -keras.ops.take_along_axis(log_p, keras.ops.cast(target, "int32")[:, None], axis=1)[:, 0]
    return loss if not smoothing else (1 - smoothing) * loss - smoothing * keras.ops.mean(log_p, axis=1)


def accuracy(y, probabilities):
    predicted = keras.ops.cast(keras.ops.argmax(probabilities, axis=1), "int32")
    return keras.ops.cast(predicted == keras.ops.cast(y[:, 0], "int32"), "float32")


LOSS_OF_TARGET = {"masked": masked_crossentropy, "softmax": softmax_crossentropy}


def with_embedding_targets(loss_of_labels, n_labels: int, weight: float):
    """For a network whose output is [probabilities, a linear map of its pooled vector] (train.model's
    training-only projection) and y's last columns the teacher's embedding targets: `loss_of_labels` on the
    probabilities and the rest of y, plus `weight` x the mean squared error of the map against the targets."""
    def loss(y, outputs):
        components = outputs.shape[-1] - n_labels
        probabilities, projected = outputs[:, :n_labels], outputs[:, n_labels:]
        labels_part, targets = y[:, :-components], y[:, -components:]
        error = keras.ops.mean(keras.ops.square(projected - targets), axis=1)
        return loss_of_labels(labels_part, probabilities) + weight * error
    loss.__name__ = loss_of_labels.__name__
    return loss


def accuracy_of_first(n_labels: int):
    """`accuracy` on the first `n_labels` outputs (the probabilities, with the projection beside them)."""
    def sliced(y, outputs):
        return accuracy(y, outputs[:, :n_labels])
    sliced.__name__ = "accuracy"
    return sliced


def loss_function(config: TrainConfig, n_labels: int = 0):
    """The training loss that `config` names (loss, label smoothing, distillation), over y = AugmentedWindows' rows;
    with feature distillation (n_labels then required) over the outputs [probabilities, projection]."""
    hard = mixed(LOSS_OF_TARGET[config.loss], config.label_smoothing)
    labels_loss = distilled(hard, config.teacher_weight) if config.teacher_weight else hard
    if not config.teacher_feature_weight:
        return labels_loss
    return with_embedding_targets(labels_loss, n_labels, config.teacher_feature_weight)
