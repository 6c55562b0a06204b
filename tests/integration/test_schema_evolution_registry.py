"""Schema evolution of SensorReading on the real registry (Apicurio's Confluent-compatible
API): BACKWARD set on the subject, v1 then v2 registered, a breaking v3 refused at
registration, and readers of either version read records written with the other through
the Confluent wire format (writer's schema id in the header, resolved to the reader schema)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from pipeline.adapters.avro import SENSOR_READING_VERSIONS, load_schema, reading_codec
from pipeline.adapters.avro.evolution import register_sensor_reading_versions, register_versions
from pipeline.adapters.avro.mapping import reading_from_avro
from pipeline.adapters.registry import ConfluentSchemaRegistry
from pipeline.application.errors import IncompatibleSchema
from pipeline.application.upcasting import DEFAULT_UPCASTERS, SENSOR_READING
from tests.avro_events import reading
from tests.evolution_samples import FIRMWARE, breaking_v3, reading_v2_record, v2_codec

pytestmark = pytest.mark.integration


@pytest.fixture
def topic() -> str:
    return f"evolution-it-{uuid4().hex}"


async def test_versions_are_registered_in_order_under_backward(
    registry: ConfluentSchemaRegistry, topic: str
) -> None:
    ids = await register_sensor_reading_versions(registry, topic)

    assert await registry.compatibility(f"{topic}-value") == "BACKWARD"
    assert len(set(ids)) == 2
    assert "firmware_version" in await registry.schema(ids[1])
    assert "firmware_version" not in await registry.schema(ids[0])


async def test_registering_the_versions_again_returns_the_same_ids(
    registry: ConfluentSchemaRegistry, topic: str
) -> None:
    first = await register_sensor_reading_versions(registry, topic)

    again = await register_sensor_reading_versions(registry, topic)

    assert again == first


async def test_required_field_without_default_is_refused_by_the_registry(
    registry: ConfluentSchemaRegistry, topic: str
) -> None:
    versions = [load_schema(name) for name in SENSOR_READING_VERSIONS]

    with pytest.raises(IncompatibleSchema, match=r"version 3 .*BACKWARD.*calibration_id"):
        await register_versions(registry, f"{topic}-value", [*versions, breaking_v3()])


async def test_v1_reader_reads_a_record_written_with_v2(
    registry: ConfluentSchemaRegistry, other_registry: ConfluentSchemaRegistry, topic: str
) -> None:
    v1_id, v2_id = await register_sensor_reading_versions(registry, topic)
    payload = await v2_codec(registry, f"{topic}-value").encode(reading_v2_record(reading(4)))

    decoded = await reading_codec(other_registry, topic).decode_many([payload])

    assert int.from_bytes(payload[1:5], "big") == v2_id != v1_id
    assert decoded == [reading(4)]


async def test_v2_reader_reads_a_record_written_with_v1_with_firmware_version_null(
    registry: ConfluentSchemaRegistry, other_registry: ConfluentSchemaRegistry, topic: str
) -> None:
    v1_id, _ = await register_sensor_reading_versions(registry, topic)
    payload = await reading_codec(registry, topic).encode(reading(7))

    [record] = await v2_codec(other_registry, f"{topic}-value").decode_many([payload])

    assert int.from_bytes(payload[1:5], "big") == v1_id
    assert isinstance(record, dict)
    assert record["firmware_version"] is None
    assert reading_from_avro(record) == reading(7)


async def test_v2_reader_keeps_the_firmware_version_of_v2_records(
    registry: ConfluentSchemaRegistry, other_registry: ConfluentSchemaRegistry, topic: str
) -> None:
    await register_sensor_reading_versions(registry, topic)
    payload = await v2_codec(registry, f"{topic}-value").encode(reading_v2_record(reading(9)))

    [record] = await v2_codec(other_registry, f"{topic}-value").decode_many([payload])

    assert isinstance(record, dict)
    assert DEFAULT_UPCASTERS.upcast(SENSOR_READING, 2, record)["firmware_version"] == FIRMWARE
