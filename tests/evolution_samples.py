"""Schemas and records of the SensorReading versions, shared by the schema-evolution tests."""

from __future__ import annotations

import json
from typing import Any

from pipeline.adapters.avro import SENSOR_READING_V2, AvroCodec, load_schema
from pipeline.adapters.avro.mapping import reading_to_avro
from pipeline.application.ports import SchemaRegistry
from pipeline.domain.sensors import Reading

FIRMWARE = "3.1.0"


def reading_v2_record(reading: Reading, firmware_version: str | None = FIRMWARE) -> dict[str, Any]:
    """The SensorReading v2 record of `reading`, with `firmware_version`."""
    return {**reading_to_avro(reading), "firmware_version": firmware_version}


def v2_codec(registry: SchemaRegistry, subject: str) -> AvroCodec[dict[str, Any]]:
    """A codec reading and writing SensorReading v2 records as plain dicts."""
    return AvroCodec(
        registry=registry,
        subject=subject,
        schema=load_schema(SENSOR_READING_V2),
        to_avro=lambda record: record,
        from_avro=lambda record: record,
    )


def breaking_v3() -> str:
    """SensorReading v2 plus a required field without a default: not BACKWARD compatible
    (a v3 reader has nothing to put in `calibration_id` for a v2 record)."""
    schema = json.loads(load_schema(SENSOR_READING_V2))
    schema["fields"].append(
        {"name": "calibration_id", "type": "string", "doc": "Calibration run; required."}
    )
    return json.dumps(schema)
