"""A reader for flat Avro records — fields of strings, doubles and longs (timestamps in
microseconds among them), each optionally in a union with null — that returns the field
values in schema order, without a dict per record.

fastavro's `schemaless_reader` spends more per call on its generic set-up (options, schema
checks, a dict, the logical-type dispatch) than a record of eight such fields takes to read:
for the sensor readings of the worker's hot path this loop, specialised by nothing but a
tuple of field kinds, reads a record in about half the CPU. It never has the last word: a
body it cannot read exactly (a wrong union branch, a negative length, bytes left over, a
long past 64 bits, a timestamp out of range, bad UTF-8) returns None and the codec reads
it with fastavro, which says what is wrong. Whatever it does read, fastavro reads the same
(`tests/unit/test_avro_flat.py`, property-tested on valid and arbitrary bodies).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

_STRING, _DOUBLE, _LONG, _MICROS = 0, 1, 2, 3
_NOT_NULL = -1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = 2**63
_double = struct.Struct("<d").unpack_from

Field = tuple[int, int]
"""(kind, the union index of null, or -1 for a field that cannot be null)."""


def flat_fields(schema: Mapping[str, Any]) -> tuple[Field, ...] | None:
    """The fields of a parsed record schema as this reader reads them, or None if one is
    of a type it does not read (the codec then keeps fastavro for it)."""
    if schema.get("type") != "record":
        return None
    fields: list[Field] = []
    for field in schema["fields"]:
        kind, null = _branches(field["type"])
        if kind is None:
            return None
        fields.append((kind, null))
    return tuple(fields)


def _branches(avro_type: Any) -> tuple[int | None, int]:
    if isinstance(avro_type, list):
        if len(avro_type) != 2 or "null" not in avro_type:
            return None, _NOT_NULL
        null = avro_type.index("null")
        kind, inner = _branches(avro_type[1 - null])
        return (kind, null) if inner == _NOT_NULL else (None, _NOT_NULL)
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "long" and avro_type.get("logicalType") == "timestamp-micros":
            return _MICROS, _NOT_NULL
        if set(avro_type) - {"type"}:  # another logical type, a named or complex type
            return None, _NOT_NULL
        avro_type = avro_type["type"]
    return {"string": _STRING, "double": _DOUBLE, "long": _LONG}.get(avro_type), _NOT_NULL


def read_flat(  # noqa: PLR0911, PLR0912 - one loop over the fields, inlined: it runs per field
    payload: bytes, start: int, fields: Sequence[Field]
) -> list[Any] | None:
    """The values of the record in `payload[start:]`, in schema order; None if the body is
    not exactly one record this reader can read (see the module doc)."""
    values: list[Any] = []
    append = values.append
    size = len(payload)
    i = start
    try:
        for kind, null in fields:
            if null != _NOT_NULL:
                branch = payload[i]
                i += 1
                if branch == null * 2:  # zigzag: index 0 is 0, index 1 is 2
                    append(None)
                    continue
                if branch != (1 - null) * 2:
                    return None
            if kind == _DOUBLE:
                if i + 8 > size:
                    return None
                append(_double(payload, i)[0])
                i += 8
                continue
            # A string's length or a long: a zigzag varint.
            byte = payload[i]
            i += 1
            raw = byte & 0x7F
            shift = 7
            while byte & 0x80:
                if shift > 63:
                    return None
                byte = payload[i]
                i += 1
                raw |= (byte & 0x7F) << shift
                shift += 7
            number = (raw >> 1) ^ -(raw & 1)
            if kind == _STRING:
                end = i + number
                if number < 0 or end > size:
                    return None
                append(payload[i:end].decode())
                i = end
            elif not -_INT64 <= number < _INT64:
                return None
            elif kind == _MICROS:
                append(_EPOCH + timedelta(microseconds=number))
            else:
                append(number)
    except (IndexError, UnicodeDecodeError, OverflowError):
        return None
    return values if i == size else None
