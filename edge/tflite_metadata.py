"""The metadata entries of a `.tflite` file, read without TensorFlow: a hand-written walk of the flatbuffer.

A TFLite model is a flatbuffer whose root `Model` table has `buffers` (field 4) and `metadata`
(field 6, a vector of `{name: string, buffer: uint}`); see tensorflow/compiler/mlir/lite/schema/
schema.fbs. The reader below walks just those tables; edge/bundle_json.py picks edge-ser's own entry.
"""
from __future__ import annotations

import struct

from edge.bundle import ModelBundleError

MODEL_BUFFERS, MODEL_METADATA = 4, 6  # field indices in the Model table
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
METADATA_NAME_FIELD, METADATA_BUFFER_FIELD = 0, 1


class _Flatbuffer:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def u16(self, at: int) -> int:
        return int(struct.unpack_from("<H", self.data, at)[0])

    def u32(self, at: int) -> int:
        return int(struct.unpack_from("<I", self.data, at)[0])

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


def read_metadata(data: bytes, source: str = "the model") -> dict[str, bytes]:
    """All metadata entries of a TFLite flatbuffer: name -> bytes (`source` names it in errors)."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelBundleError(f"{source} is not a TFLite model (no TFL3 identifier)")
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
        raise ModelBundleError(f"{source} is damaged: its TFLite flatbuffer is corrupt ({error})") from None


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
