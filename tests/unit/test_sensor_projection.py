"""The sensor projection: records in, readings/alerts/offsets out, exactly once per group."""

from __future__ import annotations

import struct
from datetime import timedelta

import pytest

from pipeline.adapters.avro import reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.ports import Record, TopicPartition
from pipeline.application.sensors import SensorProjection
from pipeline.domain import Reading

TOPIC = "sensor-readings"


def reading(
    clock: ManualClock, sensor: str = "temp-0001", value: float = 21.5, **kw: object
) -> Reading:
    fields: dict[str, object] = {
        "sensor_id": sensor,
        "sensor_type": "temperature",
        "value": value,
        "unit": "celsius",
        "timestamp": clock.now() - timedelta(seconds=30),
        "location": "site-01/floor-1",
        "battery_level": 80.0,
        "signal_strength": -60.0,
    }
    fields.update(kw)
    return Reading(**fields)  # type: ignore[arg-type]


def record(offset: int, value: bytes | None, partition: int = 0) -> Record:
    return Record(
        topic=TOPIC, partition=partition, offset=offset, key=b"k", value=value, timestamp_ms=0
    )


@pytest.fixture
def store() -> InMemorySensorStore:
    return InMemorySensorStore()


@pytest.fixture
def projection(clock: ManualClock, store: InMemorySensorStore) -> SensorProjection:
    codec = reading_codec(InMemorySchemaRegistry(), TOPIC)
    return SensorProjection(group_id="g", codec=codec, store=store, clock=clock)


async def encoded(projection: SensorProjection, r: Reading) -> bytes:
    return await projection._codec.encode(r)


async def test_valid_readings_are_stored_with_their_offsets(
    projection: SensorProjection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    values = [await encoded(projection, reading(clock, f"temp-{i:04d}")) for i in range(3)]

    report = await projection.handle([record(i, v) for i, v in enumerate(values)])

    assert report.readings_inserted == 3
    assert report.rejections == ()
    assert await store.count_readings() == 3
    assert await store.stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {
        TopicPartition(TOPIC, 0): 3
    }


async def test_invalid_reading_is_rejected_with_its_rule_and_offset_but_consumed(
    projection: SensorProjection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    good = await encoded(projection, reading(clock))
    impossible = await encoded(projection, reading(clock, "temp-0002", value=-500.0))

    report = await projection.handle([record(0, good), record(1, impossible)])

    assert [(r.offset, r.error_class) for r in report.rejections] == [(1, "reading_out_of_range")]
    assert "-500" in report.rejections[0].reason
    assert await store.count_readings() == 1
    assert report.next_offsets == {TopicPartition(TOPIC, 0): 2}


@pytest.mark.parametrize(
    ("payload", "error_class"),
    [
        (None, "missing_value"),
        (b"\x07garbage", "bad_magic_byte"),
        (b"\x00" + struct.pack(">I", 987_654) + b"\x02", "unknown_schema_id"),
    ],
)
async def test_undecodable_record_is_rejected_not_raised(
    projection: SensorProjection, payload: bytes | None, error_class: str
) -> None:
    report = await projection.handle([record(0, payload)])

    assert [r.error_class for r in report.rejections] == [error_class]
    assert report.next_offsets == {TopicPartition(TOPIC, 0): 1}


async def test_truncated_avro_is_rejected_as_malformed(
    projection: SensorProjection, clock: ManualClock
) -> None:
    value = await encoded(projection, reading(clock))

    report = await projection.handle([record(0, value[:9])])

    assert [r.error_class for r in report.rejections] == ["malformed_payload"]


async def test_reading_beyond_threshold_raises_one_alert(
    projection: SensorProjection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    hot = await encoded(projection, reading(clock, value=75.0))

    report = await projection.handle([record(0, hot)])

    assert len(report.new_alerts) == 1
    assert report.new_alerts[0].severity == "critical"
    assert [a.alert_id for a in await store.alerts()] == [report.new_alerts[0].alert_id]


async def test_handling_the_same_batch_twice_changes_nothing(
    projection: SensorProjection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    values = [
        await encoded(projection, reading(clock, f"temp-{i:04d}", value=75.0)) for i in range(4)
    ]
    batch = [record(i, v) for i, v in enumerate(values)]
    await projection.handle(batch)

    again = await projection.handle(batch)

    assert again.readings_inserted == 0
    assert again.skipped == 4
    assert again.new_alerts == ()
    assert await store.count_readings() == 4
    assert len(await store.alerts()) == 4
