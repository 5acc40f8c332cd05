"""The model bundle inside a `.tflite` file: a JSON metadata entry read without TensorFlow.

A TFLite model is a flatbuffer whose root `Model` table has `buffers` (field 4) and `metadata`
(field 6, a vector of `{name: string, buffer: uint}`); see tensorflow/compiler/mlir/lite/schema/
schema.fbs. edge-ser stores its bundle (labels, feature params, corpora, metrics, ...) as the
metadata entry named `edge_ser_bundle`. The reader below walks just those tables.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from edge.calibration import Calibration
from edge.errors import EdgeSerError
from edge.features import FeatureParams, FeatureParamsError

METADATA_NAME = "edge_ser_bundle"
BUNDLE_FORMAT = "edge-ser-bundle/1"
MODEL_BUFFERS, MODEL_METADATA = 4, 6  # field indices in the Model table
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
METADATA_NAME_FIELD, METADATA_BUFFER_FIELD = 0, 1


class ModelBundleError(EdgeSerError):
    """A model file that is not a TFLite flatbuffer, has no edge-ser bundle, or cannot be used."""


@dataclass(frozen=True)
class Bundle:
    labels: tuple[str, ...]
    params: FeatureParams
    clip_hop_seconds: float
    raw: dict
    calibration: Calibration = Calibration()  # applied to what is reported (edge/calibration.py)


class _Flatbuffer:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def u16(self, at: int) -> int:
        return struct.unpack_from("<H", self.data, at)[0]

    def u32(self, at: int) -> int:
        return struct.unpack_from("<I", self.data, at)[0]

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field `index` of the table at `table`, None when absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        slot = 4 + 2 * index
        if slot >= self.u16(vtable):
            return None
        offset = self.u16(vtable + slot)
        return table + offset if offset else None

    def follow(self, at: int) -> int:
        return at + self.u32(at)

    def vector(self, at: int) -> tuple[int, int]:
        """(position of first element, length) of the vector referenced at `at`."""
        start = self.follow(at)
        return start + 4, self.u32(start)

    def tables(self, table: int, index: int) -> list[int]:
        where = self.field(table, index)
        if where is None:
            return []
        first, length = self.vector(where)
        return [self.follow(first + 4 * i) for i in range(length)]


def read_metadata(data: bytes) -> dict[str, bytes]:
    """All metadata entries of a TFLite flatbuffer: name -> bytes."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelBundleError("not a TFLite model (no TFL3 identifier)")
    try:
        fb = _Flatbuffer(data)
        model = fb.follow(0)
        buffers = fb.tables(model, MODEL_BUFFERS)
        entries = {}
        for entry in fb.tables(model, MODEL_METADATA):
            name_field = fb.field(entry, METADATA_NAME_FIELD)
            if name_field is None:
                raise TypeError("a metadata entry without a name")
            name_at = fb.follow(name_field)
            name = data[name_at + 4:name_at + 4 + fb.u32(name_at)].decode()
            buffer_at = fb.field(entry, METADATA_BUFFER_FIELD)
            entries[name] = _buffer_bytes(fb, buffers[fb.u32(buffer_at)] if buffer_at else None)
        return entries
    except (struct.error, IndexError, TypeError, UnicodeDecodeError) as error:
        raise ModelBundleError(f"corrupt TFLite flatbuffer ({error})") from None


def _buffer_bytes(fb: _Flatbuffer, buffer: int | None) -> bytes:
    if buffer is None:
        return b""
    data_at = fb.field(buffer, BUFFER_DATA)
    if data_at is not None:
        first, length = fb.vector(data_at)
        return fb.data[first:first + length]
    offset_at, size_at = fb.field(buffer, BUFFER_OFFSET), fb.field(buffer, BUFFER_SIZE)
    if offset_at is None or size_at is None:
        return b""
    offset, size = (struct.unpack_from("<Q", fb.data, at)[0] for at in (offset_at, size_at))
    return fb.data[offset:offset + size]


def bundle_from_dict(raw: dict, source: str) -> Bundle:
    """Validate a bundle dict; refuse features this edge-ser cannot reproduce."""
    if raw.get("format") != BUNDLE_FORMAT:
        raise ModelBundleError(f"{source}: unknown bundle format {raw.get('format')!r} (expected {BUNDLE_FORMAT})")
    try:
        params = FeatureParams.from_dict(raw["feature_params"])
    except FeatureParamsError as error:
        raise ModelBundleError(f"{source}: this edge-ser cannot reproduce the model's features: {error}") from None
    except (KeyError, TypeError) as error:
        raise ModelBundleError(f"{source}: bundle has no usable feature_params ({error})") from None
    labels = tuple(raw.get("labels") or ())
    if len(labels) < 2:
        raise ModelBundleError(f"{source}: bundle lists fewer than two labels")
    return Bundle(labels, params, float(raw.get("clip_hop_seconds", 0.5)), raw, _calibration(raw, source))


def _calibration(raw: dict, source: str) -> Calibration:
    try:
        calibration = Calibration.from_dict(raw.get("calibration"))
    except (TypeError, ValueError) as error:
        raise ModelBundleError(f"{source}: unusable calibration in the bundle ({error})") from None
    if not 0.01 <= calibration.temperature <= 100 or not all(0 <= v <= 1 for k in calibration.confidence_map for v in k):
        raise ModelBundleError(f"{source}: calibration out of range (temperature {calibration.temperature}, "
                               "confidence map outside [0, 1])")
    return calibration


def read_bundle(model_path: str | Path) -> Bundle:
    path = Path(model_path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelBundleError(f"cannot read model {path}: {error.strerror or error}") from None
    entries = read_metadata(data)
    if METADATA_NAME not in entries:
        raise ModelBundleError(f"{path} has no edge-ser bundle (was it made by `edge-ser quantize`?)")
    try:
        raw = json.loads(entries[METADATA_NAME])
    except ValueError as error:
        raise ModelBundleError(f"{path}: bundle is not valid JSON ({error})") from None
    return bundle_from_dict(raw, str(path))
