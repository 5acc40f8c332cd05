"""Writing a `.tflite` on the device: the base network with what an adapted layer reads as further outputs
(its vector pooled over time, and the front-end's sequence its LSTM reads) and a new edge-ser bundle
(edge/bundle_json.py reads it back without this module). Uses the flatbuffer schema that ai-edge-litert
ships and the `flatbuffers` package it depends on; nothing else in the network changes."""
from __future__ import annotations

from typing import Any

import numpy as np

from edge.bundle import ModelBundleError
from edge.bundle_json import METADATA_NAME, bundle_metadata, stamp_digest
from edge.errors import EdgeSerError

# Ops between the last Dense layer and the model's output: its softmax, and in an int8 model the
# dequantisation of that softmax.
AFTER_LAST_DENSE = ("SOFTMAX", "DEQUANTIZE")
LAST_DENSE = "FULLY_CONNECTED"
FUSED_LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise EdgeSerError("writing a model needs ai-edge-litert (its flatbuffer schema): pip install ai-edge-litert") from None
    return schema_py_generated


def _op_name(schema: Any, model: Any, op: Any) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return str(names.get(builtin, builtin))


def _producers(graph: Any) -> dict[int, Any]:
    """Each tensor's producing op."""
    return {int(out): op for op in graph.operators for out in op.outputs}


def pooled_tensor(schema: Any, model: Any) -> int:
    """The tensor the network's last Dense layer reads: walk back from the first output through the
    softmax (and its dequantisation) to that layer. Not an edge-ser network: a ModelBundleError."""
    graph = model.subgraphs[0]
    producers = _producers(graph)
    tensor = int(graph.outputs[0])
    for _ in range(len(AFTER_LAST_DENSE) + 1):
        op = producers.get(tensor)
        if op is None:
            break
        name = _op_name(schema, model, op)
        if name == LAST_DENSE:
            return int(op.inputs[0])
        if name not in AFTER_LAST_DENSE:
            break
        tensor = int(op.inputs[0])
    raise ModelBundleError("the network does not end in Dense -> softmax, so it cannot be adapted")


def summary_tensors(schema: Any, model: Any) -> list[int]:
    """What an adapted layer reads (docs/adaptation.md "What the layer reads"): the vector the network pools
    over time (the input of its Dense layers) and, where the LSTM is one fused op, the front-end's sequence
    that LSTM reads. A room changes the front-end's view of a voice in ways the pooled vector no longer
    shows; an unrolled LSTM (the GPU layout) has no single op to find that sequence by."""
    graph = model.subgraphs[0]
    producers = _producers(graph)
    tensor = pooled_tensor(schema, model)
    while (op := producers.get(tensor)) is not None and _op_name(schema, model, op) == LAST_DENSE:
        tensor = int(op.inputs[0])
    lstms = [op for op in graph.operators if _op_name(schema, model, op) == FUSED_LSTM]
    return [tensor] + [int(op.inputs[0]) for op in lstms[:1]]


def packed_with_bundle(schema: Any, model: Any, bundle: dict[str, Any], size: int) -> bytes:
    """`model` (the schema's ModelT) packed with `bundle` as its one edge-ser metadata entry and stamped with
    the file's digest; a bundle it already had is replaced and its buffer emptied, so files do not grow.
    `size`: about the packed size, for the builder's first buffer."""
    import flatbuffers

    payload = schema.BufferT()
    payload.data = np.frombuffer(bundle_metadata(bundle), dtype=np.uint8)
    model.buffers.append(payload)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    for replaced in [m for m in (model.metadata or []) if m.name == METADATA_NAME.encode()]:
        model.buffers[replaced.buffer].data = None
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME.encode()] + [entry]
    builder = flatbuffers.Builder(size + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return stamp_digest(bytes(builder.Output()))


def adapted_flatbuffer(base: bytes, bundle: dict[str, Any]) -> bytes:
    """`base` with `summary_tensors` as its further outputs and `bundle` as its edge-ser metadata."""
    schema = _schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(base, 0))
    except Exception as error:  # noqa: BLE001 - a damaged flatbuffer raises anything
        raise ModelBundleError(f"cannot read the network ({type(error).__name__})") from None
    graph = model.subgraphs[0]
    graph.outputs = np.array([int(graph.outputs[0])] + summary_tensors(schema, model), dtype=np.int32)
    return packed_with_bundle(schema, model, bundle, len(base))
