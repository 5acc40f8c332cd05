"""The compact LSTM classifier, built by one function for Keras 3 (training) and tf_keras (export).

Architecture (docs/design.md experiment, ~82 k parameters with the defaults): Conv1D(64, 5) + BN + ReLU +
MaxPool(4) front-end -> LSTM(96) over time -> mean over time -> Dense(64) -> softmax. The LSTM keeps
Keras' default activations and no recurrent dropout so that TFLite fuses it into one
UNIDIRECTIONAL_SEQUENCE_LSTM op (and cuDNN runs it on a GPU).
"""
from __future__ import annotations

from types import ModuleType

from train.config import ModelConfig


def build_model(keras: ModuleType, config: ModelConfig, frames: int, n_features: int, n_classes: int,
                batch_size: int | None = None, unroll: bool = False):
    """The classifier in `keras` (keras or tf_keras); batch_size=1 gives a TFLite-friendly graph,
    unroll=True an LSTM of plain per-step ops (no state tensors) for LiteRT's GPU accelerator."""
    layers = keras.layers
    inputs = keras.Input(shape=(frames, n_features), batch_size=batch_size, name="features")
    x = inputs
    if config.conv_filters:
        x = layers.Conv1D(config.conv_filters, config.conv_kernel, padding="same", use_bias=False, name="conv")(x)
        x = layers.BatchNormalization(name="conv_bn")(x)
        x = layers.ReLU(name="conv_relu")(x)
        if config.pool > 1:
            x = layers.MaxPooling1D(config.pool, name="pool")(x)
    for i, units in enumerate(config.lstm_units):
        x = layers.LSTM(units, return_sequences=True, unroll=unroll, name=f"lstm_{i}")(x)
    x = layers.GlobalAveragePooling1D(name="mean_over_time")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    if config.dense_units:
        x = layers.Dense(config.dense_units, activation="relu", name="dense")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name="dense_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="compact_lstm")
