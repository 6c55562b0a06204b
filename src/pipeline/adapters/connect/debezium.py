"""Decoders of the records the Debezium connectors of `connectors/` write: JSON (Connect's
JsonConverter without schemas), rows flattened by `ExtractNewRecordState`.

A deleted row arrives as a row marked `"__deleted": "true"` followed by a tombstone
(`delete.tombstone.handling.mode=rewrite-with-tombstone`: the tombstone is a real Kafka
tombstone, so compaction removes the key); both decode to None, "deleted".
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.application.errors import MalformedPayload
from pipeline.application.ports.tables import TableCodec
from pipeline.domain import SensorMetadata

_THRESHOLDS = ("low", "high", "critical_low", "critical_high")


def sensor_metadata_key(key: bytes) -> str:
    """The sensor id of a `sensor_metadata` change: the key is `{"sensor_id": "…"}`."""
    row = _json_object(key, "key")
    sensor_id = row.get("sensor_id")
    if not isinstance(sensor_id, str) or not sensor_id:
        raise MalformedPayload(f"sensor_metadata key without a sensor_id: {key[:200]!r}")
    return sensor_id


def sensor_metadata_value(value: bytes) -> SensorMetadata | None:
    """The row of a `sensor_metadata` change, None for a deleted row."""
    if value.strip() == b"null":
        return None
    row = _json_object(value, "value")
    if row.get("__deleted") == "true":
        return None
    sensor_id = row.get("sensor_id")
    location = row.get("location")
    if not isinstance(sensor_id, str) or not sensor_id:
        raise MalformedPayload(f"sensor_metadata row without a sensor_id: {value[:200]!r}")
    if location is not None and not isinstance(location, str):
        raise MalformedPayload(f"sensor_metadata row {sensor_id!r}: location is not text")
    limits: dict[str, float | None] = {}
    for name in _THRESHOLDS:
        limit = row.get(name)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float)):
            raise MalformedPayload(f"sensor_metadata row {sensor_id!r}: {name} is not a number")
        limits[name] = None if limit is None else float(limit)
    return SensorMetadata(sensor_id=sensor_id, location=location, **limits)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        decoded = json.loads(data)
    except ValueError as exc:
        raise MalformedPayload(f"sensor_metadata {what} is not JSON: {data[:200]!r}") from exc
    if not isinstance(decoded, dict):
        raise MalformedPayload(f"sensor_metadata {what} is not a JSON object: {data[:200]!r}")
    return decoded


SENSOR_METADATA = TableCodec(decode_key=sensor_metadata_key, decode_value=sensor_metadata_value)
"""How the sensors job reads `sensor-metadata` as a global table."""
