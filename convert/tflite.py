"""Keras run -> self-describing `.tflite` in four modes (float32, float16, dynamic-range, int8).

Route (docs/design.md toolchain facts, TF 2.21): a Keras 3 LSTM does not convert cleanly, so the trained
weights are copied into a `tf_keras` (legacy Keras 2) twin built with batch size 1, which converts
to the fused UNIDIRECTIONAL_SEQUENCE_LSTM op in every mode. The converter clips the LSTM cell state
at 10; trained models exceed that, so `cell_clip` is set to 0 (off) in the flatbuffer, which
restores parity with Keras. The edge-ser bundle is embedded as flatbuffer metadata.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from ai_edge_litert import schema_py_generated as schema  # noqa: E402

from convert import MODES, ConvertError  # noqa: E402
from edge.bundle import Bundle, ModelBundleError  # noqa: E402
from edge.bundle_json import read_bundle_json  # noqa: E402
from edge.model_file import packed_with_bundle  # noqa: E402
from edge.settings import DEFAULT_LAYOUT, LAYOUTS  # noqa: E402

FUSED_LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"
CALIBRATION_WINDOWS = 300  # representative windows for int8 (TFLite docs suggest ~100-500 samples)


def load_run(run_dir: Path):
    """(Keras model, its Bundle) from a training run folder."""
    import keras

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConvertError(f"run folder {run_dir} does not exist (train first: make train DATA=...)")
    bundle_path, model_path = run_dir / "bundle.json", run_dir / "model.keras"
    if not bundle_path.is_file():
        raise ConvertError(f"{run_dir} has no bundle.json (feature params, labels): not a complete training run")
    try:
        bundle = read_bundle_json(bundle_path)
    except ModelBundleError as error:
        raise ConvertError(f"{bundle_path} is unusable: {error}") from None
    if not bundle.training_data:
        raise ConvertError(f"{bundle_path} does not say which data trained it (made by an older edge-ser): retrain")
    if not model_path.is_file():
        raise ConvertError(f"{run_dir} has no model.keras")
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged file
        raise ConvertError(f"cannot load {model_path}: {str(error).splitlines()[0][:200]}") from None
    return model, bundle


def keras2_twin(model, bundle: Bundle, layout: str = DEFAULT_LAYOUT):
    """The same network in tf_keras with batch size 1 and the trained weights, its LSTM fused or unrolled."""
    import tf_keras

    from train.config import ModelConfig
    from train.model import build_model

    params = bundle.params
    twin = build_model(tf_keras, ModelConfig.from_dict(bundle.model_config), params.frames_per_window,
                       params.n_features, len(bundle.labels), batch_size=1, unroll=layout == "unrolled")
    twin.set_weights(model.get_weights())
    return twin


def convert(twin, mode: str, representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
            int8_io: bool = False) -> bytes:
    import tensorflow as tf

    check_mode(mode)
    converter = tf.lite.TFLiteConverter.from_keras_model(twin)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if representative is None:
            raise ConvertError("int8 needs a representative (calibration) data set")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConvertError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConvertError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")


def builtin_names() -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def operator_names(data: bytes) -> list[str]:
    """The op of every node in every subgraph, e.g. ['CONV_2D', ..., 'UNIDIRECTIONAL_SEQUENCE_LSTM']."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    names = builtin_names()
    result = []
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            result.append(code.customCode.decode() if code.customCode else names.get(builtin, str(builtin)))
    return result


def finish_flatbuffer(data: bytes, bundle: Bundle | dict) -> bytes:
    """Turn the LSTM cell clip off and embed the bundle as metadata `edge_ser_bundle` (a dict is embedded
    as it is: the tests make damaged bundles that way), stamped with the file's digest (edge/bundle_json.py); a
    bundle `data` already had is replaced and its buffer emptied."""
    record = bundle.to_dict() if isinstance(bundle, Bundle) else bundle
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM:
                op.builtinOptions.cellClip = 0.0
    return packed_with_bundle(schema, model, record, len(data))


def check_ops(data: bytes, layout: str = DEFAULT_LAYOUT) -> list[str]:
    """The fused LSTM must be there (or, unrolled, must not) and nothing from TensorFlow (Flex / Select TF ops)."""
    ops = operator_names(data)
    if (FUSED_LSTM in ops) != (layout == DEFAULT_LAYOUT):
        raise ConvertError(f"the {layout} conversion produced the wrong LSTM ops (ops: {sorted(set(ops))})")
    flex = [op for op in ops if op.startswith("Flex") or op == "WHILE"]
    if flex:
        raise ConvertError(f"conversion produced ops the TFLite runtimes cannot run alone: {sorted(set(flex))}")
    return ops
