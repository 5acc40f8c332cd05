"""The compact LSTM classifier, built by one function for Keras 3 (training) and tf_keras (export).

Architecture (docs/models.md "The network"; 110 k parameters with the defaults): two 3x3 Conv2D layers (16, 32 channels) + BN
+ ReLU + max-pooling over time and bands -> LSTM(96) over 49 steps -> mean over time -> Dense(64) -> softmax;
`front_end="conv1d"` is the earlier Conv1D(64, 5) + BN + ReLU + MaxPool(4) front-end. The LSTM keeps
Keras' default activations and no recurrent dropout so that TFLite fuses it into one
UNIDIRECTIONAL_SEQUENCE_LSTM op (and cuDNN runs it on a GPU).
"""
from __future__ import annotations

from types import ModuleType

from train.config import CONV2D_POOLS, FRONT_ENDS, ModelConfig


def build_model(keras: ModuleType, config: ModelConfig, frames: int, n_features: int, n_classes: int,
                batch_size: int | None = None, unroll: bool = False):
    """The classifier in `keras` (keras or tf_keras); batch_size=1 gives a TFLite-friendly graph,
    unroll=True an LSTM of plain per-step ops (no state tensors) for LiteRT's GPU accelerator."""
    if config.front_end not in FRONT_ENDS:
        raise ValueError(f"front-end {config.front_end!r} is not chosen yet (ModelConfig.for_corpora)")
    layers = keras.layers
    inputs = keras.Input(shape=(frames, n_features), batch_size=batch_size, name="features")
    x = inputs
    if config.front_end == "conv2d":
        x = conv2d_front_end(layers, config, x)
    elif config.conv_filters:
        x = layers.Conv1D(config.conv_filters, config.conv_kernel, padding="same", use_bias=False, name="conv")(x)
        x = layers.BatchNormalization(name="conv_bn")(x)
        x = layers.ReLU(name="conv_relu")(x)
        if config.pool > 1:
            x = layers.MaxPooling1D(config.pool, name="pool")(x)
    for i, units in enumerate(config.lstm_units):
        x = layers.LSTM(units, return_sequences=True, unroll=unroll, name=f"lstm_{i}")(x)
    x = pool_over_time(layers, config.pooling, x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    if config.dense_units:
        x = layers.Dense(config.dense_units, activation="relu", name="dense")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name="dense_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="compact_lstm")


POOLED_LAYER = {"mean": "mean_over_time", "mean_max": "mean_and_max", "attention": "attention_pooled"}


def with_teacher_projection(keras: ModuleType, student, pooling: str, components: int):
    """A training-only model around `student`, sharing its layers: its output is the student's probabilities
    and, beside them, a linear map of the pooled vector onto the teacher's `components` embedding targets
    (feature distillation, train.losses.with_embedding_targets). The student alone is saved and exported."""
    pooled = student.get_layer(POOLED_LAYER[pooling]).output
    projected = keras.layers.Dense(components, name="teacher_projection")(pooled)
    both = keras.layers.Concatenate(name="probabilities_and_projection")([student.output, projected])
    return keras.Model(student.input, both, name="compact_lstm_with_teacher_projection")


def pool_over_time(layers, pooling: str, x):
    """The LSTM's outputs over time (steps x units) as one vector (units, or 2 x units for mean_max)."""
    if pooling == "attention":
        steps = x.shape[1]
        scores = layers.Reshape((steps,), name="attention_scores")(layers.Dense(1, name="attention_score")(x))
        weights = layers.Reshape((1, steps), name="attention_row")(layers.Softmax(name="attention_weights")(scores))
        return layers.Flatten(name="attention_pooled")(layers.Dot(axes=(2, 1), name="attention_mean")([weights, x]))
    mean = layers.GlobalAveragePooling1D(name="mean_over_time")(x)
    if pooling == "mean":
        return mean
    return layers.Concatenate(name="mean_and_max")([mean, layers.GlobalMaxPooling1D(name="max_over_time")(x)])


def conv2d_front_end(layers, config: ModelConfig, x):
    """Kernels that slide along the mel bands as well as time: a pattern learnt at one pitch or formant
    position is recognised at another (a voice higher or lower), which 1-D kernels over the bands cannot."""
    x = layers.Reshape((x.shape[1], x.shape[2], 1), name="as_image")(x)
    for i, (channels, pool) in enumerate(zip(config.conv2d_channels, CONV2D_POOLS)):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv2d_{i}")(x)
        x = layers.BatchNormalization(name=f"conv2d_{i}_bn")(x)
        x = layers.ReLU(name=f"conv2d_{i}_relu")(x)
        x = layers.MaxPooling2D(pool, name=f"conv2d_{i}_pool")(x)
    return layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name="steps")(x)
