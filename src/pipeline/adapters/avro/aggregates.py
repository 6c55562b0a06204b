"""The codec of per-sensor, per-minute aggregates (schema `io.pipeline.sensors.SensorAggregate`),
what the `sensor-aggregates` job writes to its output topic."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.adapters.avro.codec import AvroCodec, value_subject
from pipeline.adapters.avro.schemas import SENSOR_AGGREGATE, load_schema
from pipeline.application.ports import SchemaRegistry
from pipeline.domain.time import from_epoch_micros, to_epoch_micros
from pipeline.domain.windows import WindowAggregate


def aggregate_to_avro(aggregate: WindowAggregate) -> dict[str, Any]:
    """The `SensorAggregate` record of `aggregate`."""
    return {
        "sensor_id": aggregate.sensor_id,
        "sensor_type": aggregate.sensor_type,
        "window_start": to_epoch_micros(aggregate.window_start),
        "window_end": to_epoch_micros(aggregate.window_end),
        "count": aggregate.count,
        "min": aggregate.min,
        "max": aggregate.max,
        "mean": aggregate.mean,
        "stddev": aggregate.stddev,
    }


def aggregate_from_avro(record: Mapping[str, Any]) -> WindowAggregate:
    """The aggregate in a `SensorAggregate` record."""
    return WindowAggregate(
        sensor_id=record["sensor_id"],
        sensor_type=record["sensor_type"],
        window_start=_utc(record["window_start"]),
        window_end=_utc(record["window_end"]),
        count=record["count"],
        min=record["min"],
        max=record["max"],
        mean=record["mean"],
        stddev=record["stddev"],
    )


def _utc(value: object) -> datetime:
    """A timestamp-micros value (fastavro gives an aware datetime) as UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int):
        return from_epoch_micros(value)
    raise TypeError(f"expected a timestamp, got {type(value).__name__}")


def aggregate_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[WindowAggregate]:
    """The codec of sensor aggregates on `topic`."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(SENSOR_AGGREGATE),
        to_avro=aggregate_to_avro,
        from_avro=aggregate_from_avro,
    )
