"""The optimiser and its learning-rate schedule."""
from __future__ import annotations

import keras

from train.config import TrainConfig


def learning_schedule(steps_per_epoch: int, config: TrainConfig):
    """Warm-up from a tenth of the learning rate, then cosine decay to 0 over the remaining epochs."""
    steps, warmup = steps_per_epoch * config.epochs, steps_per_epoch * config.warmup_epochs
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10, decay_steps=max(1, steps - warmup),
        warmup_target=config.learning_rate, warmup_steps=warmup)


def make_optimizer(schedule, config: TrainConfig) -> "keras.optimizers.Optimizer":
    """Adam, or AdamW with --weight-decay (kernels only: biases and batch-norm scales and offsets are
    left alone, the usual practice)."""
    if not config.weight_decay:
        return keras.optimizers.Adam(schedule)
    adamw = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    adamw.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return adamw
