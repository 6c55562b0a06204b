"""Schema evolution of SensorReading on the in-memory registry: v2 adds an optional field,
versions are registered in order under BACKWARD, a breaking change is refused at
registration, and old and new readers read each other's records."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from pipeline.adapters.avro import (
    SENSOR_READING,
    SENSOR_READING_V2,
    SENSOR_READING_VERSIONS,
    load_schema,
    read_problem,
    reading_codec,
)
from pipeline.adapters.avro.evolution import register_sensor_reading_versions, register_versions
from pipeline.adapters.avro.mapping import reading_from_avro
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.application.errors import IncompatibleSchema
from tests.avro_events import reading
from tests.evolution_samples import breaking_v3, reading_v2_record, v2_codec


@pytest.fixture
def topic() -> str:
    return f"evolution-{uuid4().hex}"


def test_v2_is_v1_plus_an_optional_firmware_version_defaulting_to_null() -> None:
    v1 = json.loads(load_schema(SENSOR_READING))
    v2 = json.loads(load_schema(SENSOR_READING_V2))

    assert v2["name"] == v1["name"]
    assert v2["fields"][:-1] == v1["fields"]
    added = v2["fields"][-1]
    assert (added["name"], added["type"], added["default"]) == (
        "firmware_version",
        ["null", "string"],
        None,
    )
    assert added["doc"]


def test_versions_are_listed_oldest_first() -> None:
    assert SENSOR_READING_VERSIONS == (SENSOR_READING, SENSOR_READING_V2)


def test_v1_and_v2_read_each_others_records() -> None:
    v1, v2 = load_schema(SENSOR_READING), load_schema(SENSOR_READING_V2)

    assert read_problem(reader=v2, writer=v1) is None
    assert read_problem(reader=v1, writer=v2) is None


async def test_versions_are_registered_in_order_under_backward(topic: str) -> None:
    registry = InMemorySchemaRegistry(default_compatibility="NONE")

    ids = await register_sensor_reading_versions(registry, topic)

    assert await registry.compatibility(f"{topic}-value") == "BACKWARD"
    assert await registry.versions(f"{topic}-value") == ids
    assert len(set(ids)) == 2


async def test_registering_the_versions_again_changes_nothing(topic: str) -> None:
    registry = InMemorySchemaRegistry()
    first = await register_sensor_reading_versions(registry, topic)

    again = await register_sensor_reading_versions(registry, topic)

    assert again == first
    assert await registry.versions(f"{topic}-value") == first


async def test_required_field_without_default_is_refused_at_registration(topic: str) -> None:
    registry = InMemorySchemaRegistry(default_compatibility="NONE")
    subject = f"{topic}-value"
    versions = [load_schema(name) for name in SENSOR_READING_VERSIONS]

    with pytest.raises(IncompatibleSchema, match=r"version 3 .*BACKWARD.*calibration_id"):
        await register_versions(registry, subject, [*versions, breaking_v3()])

    assert len(await registry.versions(subject)) == 2


async def test_v1_reader_reads_a_record_written_with_v2(topic: str) -> None:
    registry = InMemorySchemaRegistry()
    await register_sensor_reading_versions(registry, topic)
    payload = await v2_codec(registry, f"{topic}-value").encode(reading_v2_record(reading(4)))

    decoded = await reading_codec(registry, topic).decode_many([payload])

    assert decoded == [reading(4)]


async def test_v2_reader_reads_a_record_written_with_v1_with_firmware_version_null(
    topic: str,
) -> None:
    registry = InMemorySchemaRegistry()
    await register_sensor_reading_versions(registry, topic)
    payload = await reading_codec(registry, topic).encode(reading(7))

    [record] = await v2_codec(registry, f"{topic}-value").decode_many([payload])

    assert isinstance(record, dict)
    assert record["firmware_version"] is None
    assert reading_from_avro(record) == reading(7)
