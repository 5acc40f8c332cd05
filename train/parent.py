"""The network a run starts from (`edge-ser train --init-from`): a training run's Keras model, or an edge-ser
`.tflite` (a shipped model by name included) whose weights are read back out of the flatbuffer.

A `.tflite` holds the network as the converter left it: each batch normalisation folded into the convolution
before it (kernel scaled, a bias added), weights in int8 with their scales (dynamic-range models) or float.
Read back, the folded kernel goes into the Keras convolution and the bias into a batch normalisation that
passes its input through (scale 1, mean 0, variance 1 - epsilon); fine-tuning keeps every batch
normalisation frozen (docs/adaptation.md "Fine-tuning a whole network"), so that identity holds while the
rest learns. Imports TensorFlow (through Keras) only in the functions that build a network.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import Bundle, ModelBundleError
from edge.bundle_json import read_bundle, read_bundle_json
from edge.errors import EdgeSerError, UsageError
from edge.features import FeatureParams
from train.config import ModelConfig, TrainConfig

# The TFLite ops that carry a Keras layer's weights, and the Keras layer classes they come from, in graph order.
WEIGHTED_OPS = {"CONV_2D": ("Conv1D", "Conv2D"), "UNIDIRECTIONAL_SEQUENCE_LSTM": ("LSTM",),
                "FULLY_CONNECTED": ("Dense",)}
# UNIDIRECTIONAL_SEQUENCE_LSTM's inputs (TFLite's lstm_shared.h): input-to-gate weights, recurrent weights and
# gate biases, each in the order input, forget, cell, output, which is also the order of Keras' LSTM columns.
LSTM_INPUT_WEIGHTS, LSTM_RECURRENT_WEIGHTS, LSTM_BIASES = (1, 2, 3, 4), (5, 6, 7, 8), (12, 13, 14, 15)
OUTPUT_LAYER = "probabilities"  # build_model's softmax layer: its columns are the labels


class ParentError(EdgeSerError):
    pass


@dataclass(frozen=True)
class Parent:
    source: str  # the run folder or model file, as the user named it
    sha256: str  # of the file the weights came from (model.keras or the .tflite)
    labels: tuple[str, ...]
    params: FeatureParams
    model: ModelConfig
    weights: dict[str, list[np.ndarray]]  # Keras layer name -> the layer's weights, in Keras' layout

    def record(self) -> dict[str, Any]:
        """What the new run's bundle keeps of its parent."""
        return {"model": self.source, "sha256": self.sha256, "labels": list(self.labels)}


def read_parent(source: str) -> Parent:
    """A run folder (its model.keras and bundle.json) or a model file / shipped model name."""
    path = Path(source)
    if path.is_dir():
        bundle = read_bundle_json(path / "bundle.json")
        keras_file = path / "model.keras"
        if not keras_file.is_file():
            raise ParentError(f"{path} has no model.keras: not a finished training run")
        return Parent(source, file_sha256(keras_file), bundle.labels, bundle.params, model_config(bundle),
                      keras_weights(keras_file))
    from edge.runtime import SHIPPED_MODELS, model_or_default

    model_file = model_or_default(path, "ai-edge-litert") if source in SHIPPED_MODELS or path.suffix == ".tflite" else path
    if not model_file.is_file():
        raise ParentError(f"--init-from {source}: neither a run folder nor a model file")
    bundle = read_bundle(model_file)
    if bundle.adaptation is not None:
        raise ParentError(f"{model_file} is an adapted model (`edge-ser adapt`); start from its base model instead")
    return Parent(source, file_sha256(model_file), bundle.labels, bundle.params, model_config(bundle),
                  tflite_weights(model_file.read_bytes(), bundle))


def model_config(bundle: Bundle) -> ModelConfig:
    if not bundle.model_config:
        raise ParentError("the model's bundle does not record its network (model_config); it cannot be rebuilt")
    return ModelConfig.from_dict(bundle.model_config)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def layer_weights(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def keras_weights(keras_file: Path) -> dict[str, list[np.ndarray]]:
    import keras

    try:
        model = keras.saving.load_model(keras_file, compile=False)
    except (OSError, ValueError) as error:
        raise ParentError(f"cannot read {keras_file}: {error}") from None
    return layer_weights(model)


def tflite_weights(data: bytes, bundle: Bundle) -> dict[str, list[np.ndarray]]:
    """The network of an edge-ser `.tflite` as Keras weights: its weighted ops, in graph order, matched to the
    weighted layers of the network its bundle describes."""
    import keras

    from train.model import build_model

    schema, flat = parse_flatbuffer(data)
    network = build_model(keras, model_config(bundle), bundle.params.frames_per_window, bundle.params.n_features,
                          len(bundle.labels))
    weighted = {kind for kinds in WEIGHTED_OPS.values() for kind in kinds}
    layers = [layer for layer in network.layers if type(layer).__name__ in weighted]
    ops = weighted_ops(schema, flat)
    if len(layers) != len(ops) or any(type(layer).__name__ not in WEIGHTED_OPS[name] for layer, (name, _) in zip(layers, ops)):
        raise ParentError("the .tflite's network does not match the network its bundle describes")
    for layer, (name, inputs) in zip(layers, ops):
        set_from_op(network, layer, name, [tensor_array(schema, flat, index) for index in inputs])
    return layer_weights(network)


def parse_flatbuffer(data: bytes) -> tuple[Any, Any]:
    from edge.model_file import _schema

    schema = _schema()
    try:
        return schema, schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as error:  # the flatbuffer library raises whatever a damaged buffer trips
        raise ModelBundleError(f"cannot read the model's network: {error}") from None


def weighted_ops(schema: Any, flat: Any) -> list[tuple[str, list[int]]]:
    from edge.model_file import _op_name

    graph = flat.subgraphs[0]
    named = [(_op_name(schema, flat, op), [int(i) for i in op.inputs]) for op in graph.operators]
    return [(name, inputs) for name, inputs in named if name in WEIGHTED_OPS]


def tensor_array(schema: Any, flat: Any, index: int) -> np.ndarray | None:
    """A constant input of an op as float32 (int8 weights times their per-tensor or per-channel scales);
    None where the input is absent or not a constant."""
    if index < 0:
        return None
    tensor = flat.subgraphs[0].tensors[index]
    raw = flat.buffers[tensor.buffer].data
    if raw is None or len(raw) == 0:
        return None
    types = schema.TensorType
    dtype = {types.FLOAT32: np.float32, types.INT8: np.int8, types.INT32: np.int32}.get(tensor.type)
    if dtype is None:
        raise ParentError(f"weights of type {tensor.type} in the .tflite cannot be read back")
    values = np.frombuffer(bytes(raw), dtype=dtype).reshape(tuple(tensor.shape)).astype(np.float32)
    quantization = tensor.quantization
    if dtype is np.float32 or quantization is None or quantization.scale is None:
        return values
    shape = [1] * values.ndim  # one scale (and zero point) per channel of quantizedDimension, or one for all
    if len(quantization.scale) > 1:
        shape[quantization.quantizedDimension] = len(quantization.scale)
    scale = np.asarray(quantization.scale, dtype=np.float32).reshape(shape)
    zero = np.zeros(shape, np.float32) if quantization.zeroPoint is None else np.asarray(
        quantization.zeroPoint, dtype=np.float32).reshape(shape)
    return (values - zero) * scale


def set_from_op(network, layer, op: str, inputs: list[np.ndarray | None]) -> None:
    arrays = [np.zeros(0, np.float32) if array is None else array for array in inputs]  # absent: an empty array
    if op == "CONV_2D":
        kernel = np.transpose(arrays[1], (1, 2, 3, 0))  # TFLite (out, h, w, in) -> Keras (h, w, in, out)
        layer.set_weights([kernel.reshape(layer.kernel.shape)])
        bias = arrays[2] if arrays[2].size else np.zeros(kernel.shape[-1], np.float32)
        pass_through_batch_norm(network.get_layer(f"{layer.name}_bn"), bias)
    elif op == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        kernel = np.concatenate([arrays[i].T for i in LSTM_INPUT_WEIGHTS], axis=1)
        recurrent = np.concatenate([arrays[i].T for i in LSTM_RECURRENT_WEIGHTS], axis=1)
        layer.set_weights([kernel, recurrent, np.concatenate([arrays[i] for i in LSTM_BIASES])])
    else:  # FULLY_CONNECTED: (out, in) -> Keras (in, out)
        layer.set_weights([arrays[1].T, arrays[2] if arrays[2].size else np.zeros(arrays[1].shape[0], np.float32)])


def pass_through_batch_norm(layer, bias: np.ndarray) -> None:
    """Batch normalisation that adds `bias` and changes nothing else (the convolution before it already holds
    the folded scale)."""
    ones = np.ones_like(bias)
    layer.set_weights([ones, bias, np.zeros_like(bias), ones - layer.epsilon])


def initialise(network, parent: Parent, labels: list[str]) -> None:
    """`network` (built for `labels`) starts from the parent's weights; the output columns of labels the parent
    knows are copied, the others keep their fresh initialisation. Batch normalisations are frozen."""
    for layer in network.layers:
        if not layer.weights:
            continue
        if layer.name not in parent.weights:
            raise ParentError(f"the parent network has no layer {layer.name!r}")
        weights = parent.weights[layer.name]
        if layer.name == OUTPUT_LAYER:
            weights = output_columns(layer.get_weights(), weights, parent.labels, labels)
        if [w.shape for w in weights] != [tuple(w.shape) for w in layer.get_weights()]:
            raise ParentError(f"the parent's layer {layer.name!r} has another shape than this run's")
        layer.set_weights(weights)
        if type(layer).__name__ == "BatchNormalization":
            layer.trainable = False


def output_columns(fresh: list[np.ndarray], parent: list[np.ndarray], parent_labels: tuple[str, ...],
                   labels: list[str]) -> list[np.ndarray]:
    kernel, bias = (w.copy() for w in fresh)
    for column, label in enumerate(labels):
        if label in parent_labels:
            kernel[:, column] = parent[0][:, parent_labels.index(label)]
            bias[column] = parent[1][parent_labels.index(label)]
    return [kernel, bias]


def fine_tuning(config: TrainConfig, params: FeatureParams, parent: Parent) -> tuple[TrainConfig, FeatureParams]:
    """The recipe of a run that starts from `parent`: its network and features are the parent's (options that
    would change them are refused); the schedule is the recipe's own, which beat a shorter, gentler one
    (docs/adaptation.md "Fine-tuning a whole network")."""
    if config.model != ModelConfig() or params != FeatureParams():
        raise UsageError("--init-from takes the network and features of the model it starts from: drop the options "
                         "that change them (--front-end, --lstm-units, --n-mfcc, --normalisation, ...)")
    return replace(config, model=parent.model), parent.params


def starting_point(init_from: str | None, config: TrainConfig,
                   params: FeatureParams) -> tuple[TrainConfig, FeatureParams, Parent | None]:
    """The recipe and the parent network of a run: unchanged from random weights, fine_tuning's with --init-from."""
    if not init_from:
        return config, params, None
    parent = read_parent(init_from)
    return (*fine_tuning(config, params, parent), parent)
