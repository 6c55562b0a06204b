"""AvroCodec against the real schema registry: ids come from the registry, a codec in another
process (fresh client, empty caches) reads them, and schema evolution works across it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from pipeline.adapters.avro import AvroCodec, alert_codec, reading_codec
from pipeline.adapters.avro.mapping import reading_to_avro
from pipeline.adapters.registry import ConfluentSchemaRegistry
from pipeline.application.errors import UnknownSchemaId
from tests.avro_events import alert, reading, reading_schema_v2

pytestmark = pytest.mark.integration


@pytest.fixture
def topic() -> str:
    return f"codec-it-{uuid4().hex}"


async def test_encode_registers_the_schema_under_the_topic_value_subject(
    registry: ConfluentSchemaRegistry, topic: str
) -> None:
    codec = reading_codec(registry, topic)

    payload = await codec.encode(reading())

    schema_id = int.from_bytes(payload[1:5], "big")
    assert payload[0] == 0
    assert schema_id == await codec.schema_id()
    assert "SensorReading" in await registry.schema(schema_id)


async def test_another_process_decodes_what_one_encoded(
    registry: ConfluentSchemaRegistry, other_registry: ConfluentSchemaRegistry, topic: str
) -> None:
    writer = reading_codec(registry, topic)
    payloads = [await writer.encode(reading(i)) for i in range(20)]

    decoded = await reading_codec(other_registry, topic).decode_many(payloads)

    assert decoded == [reading(i) for i in range(20)]


async def test_alerts_round_trip_through_the_registry(
    registry: ConfluentSchemaRegistry, other_registry: ConfluentSchemaRegistry, topic: str
) -> None:
    payload = await alert_codec(registry, topic).encode(alert())

    assert await alert_codec(other_registry, topic).decode_many([payload]) == [alert()]


async def test_v1_reader_decodes_v2_records_registered_in_the_registry(
    registry: ConfluentSchemaRegistry, other_registry: ConfluentSchemaRegistry, topic: str
) -> None:
    v1 = reading_codec(registry, topic)
    await v1.encode(reading())  # v1 is registered first
    v2: AvroCodec[dict[str, Any]] = AvroCodec(
        registry=registry,
        subject=f"{topic}-value",
        schema=reading_schema_v2(),
        to_avro=lambda record: record,
        from_avro=lambda record: record,
    )
    payload = await v2.encode({**reading_to_avro(reading(5)), "firmware": "3.0"})

    decoded = await reading_codec(other_registry, topic).decode_many([payload])

    assert await v2.schema_id() != await v1.schema_id()
    assert decoded == [reading(5)]


async def test_schema_id_unknown_to_the_registry_is_an_unknown_schema_id(
    registry: ConfluentSchemaRegistry, topic: str
) -> None:
    payload = b"\x00" + (2_000_000_000).to_bytes(4, "big") + b"\x02a"

    [result] = await reading_codec(registry, topic).decode_many([payload])

    assert isinstance(result, UnknownSchemaId)
