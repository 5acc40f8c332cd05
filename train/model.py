"""The compact LSTM classifier, built by one function for Keras 3 (training) and tf_keras (export).

Architecture (docs/design.md experiment, ~82 k parameters with the defaults): Conv1D(64, 5) + BN + ReLU +
MaxPool(4) front-end -> LSTM(96) over time -> mean over time -> Dense(64) -> softmax. The LSTM keeps
Keras' default activations and no recurrent dropout so that TFLite fuses it into one
UNIDIRECTIONAL_SEQUENCE_LSTM op (and cuDNN runs it on a GPU).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    conv_filters: int = 64  # 0 = no convolutional front-end
    conv_kernel: int = 5
    pool: int = 4  # 198 frames -> 49 LSTM steps: half the inference time of pool 2 (README "Model")
    lstm_units: tuple[int, ...] = (96,)
    dense_units: int = 64  # 0 = straight to the softmax
    dropout: float = 0.3

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lstm_units": list(self.lstm_units)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return cls(**{**data, "lstm_units": tuple(data["lstm_units"])})


def build_model(keras: ModuleType, config: ModelConfig, frames: int, n_features: int, n_classes: int,
                batch_size: int | None = None):
    """The classifier in `keras` (keras or tf_keras); batch_size=1 gives a TFLite-friendly graph."""
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
        x = layers.LSTM(units, return_sequences=True, name=f"lstm_{i}")(x)
    x = layers.GlobalAveragePooling1D(name="mean_over_time")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    if config.dense_units:
        x = layers.Dense(config.dense_units, activation="relu", name="dense")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name="dense_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="compact_lstm")
