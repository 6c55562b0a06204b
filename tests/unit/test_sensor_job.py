"""The sensors job on the runtime: records in, readings/alerts/aggregates/offsets out,
exactly once per group (the in-memory checkpoint store; no broker)."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta

import pytest

from pipeline.adapters.avro import reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.ports import Codec, Record, TopicPartition
from pipeline.application.runtime.handler import JobHandler
from pipeline.application.runtime.report import BatchReport
from pipeline.domain import Reading
from pipeline.jobs.sensors import SensorJobConfig, sensor_job
from tests.projection import checkpoint_for

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


class Projection:
    """The sensors job's handler for group `g`, on `store`, as a worker runs it."""

    def __init__(self, clock: ManualClock, store: InMemorySensorStore) -> None:
        self.codec: Codec[Reading] = reading_codec(InMemorySchemaRegistry(), TOPIC)
        self.handler = JobHandler(
            # Each handled batch upserts the windows it changed (checked batch by batch).
            job=sensor_job(SensorJobConfig(topic=TOPIC, aggregates_every=None)),
            group_id="g",
            codecs={TOPIC: self.codec},
            store=checkpoint_for(store),
            log_=None,
            clock=clock,
            worker_id="test",
        )
        self._resolved = False

    async def handle(self, records: list[Record]) -> BatchReport:
        if not self._resolved:
            await self.handler.resolve([TopicPartition(TOPIC, 0)])
            self._resolved = True
        return await self.handler.apply(await self.handler.prepare(records))


@pytest.fixture
def projection(clock: ManualClock, store: InMemorySensorStore) -> Projection:
    return Projection(clock, store)


async def encoded(projection: Projection, r: Reading) -> bytes:
    return await projection.codec.encode(r)


async def test_valid_readings_are_stored_with_their_offsets(
    projection: Projection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    values = [await encoded(projection, reading(clock, f"temp-{i:04d}")) for i in range(3)]

    report = await projection.handle([record(i, v) for i, v in enumerate(values)])

    assert report.written["readings"] == 3
    assert report.dead_lettered == ()
    assert await store.count_readings() == 3
    assert await checkpoint_for(store).stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {
        TopicPartition(TOPIC, 0): 3
    }


async def test_invalid_reading_is_rejected_with_its_rule_and_offset_but_consumed(
    projection: Projection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    good = await encoded(projection, reading(clock))
    impossible = await encoded(projection, reading(clock, "temp-0002", value=-500.0))

    report = await projection.handle([record(0, good), record(1, impossible)])

    assert [(r.offset, r.error_class) for r in report.dead_lettered] == [
        (1, "reading_out_of_range")
    ]
    assert "-500" in report.dead_lettered[0].reason
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
    projection: Projection, payload: bytes | None, error_class: str
) -> None:
    report = await projection.handle([record(0, payload)])

    assert [r.error_class for r in report.dead_lettered] == [error_class]
    assert report.next_offsets == {TopicPartition(TOPIC, 0): 1}


class CountingClock(ManualClock):
    """A manual clock that counts how often it is read."""

    reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return super().now()


async def test_the_clock_is_read_once_per_batch_not_once_per_reading(
    store: InMemorySensorStore, clock: ManualClock
) -> None:
    counting = CountingClock(clock.now())
    projection = Projection(counting, store)
    values = [await encoded(projection, reading(clock, f"temp-{i:04d}")) for i in range(50)]
    await projection.handler.resolve([TopicPartition(TOPIC, 0)])
    before = counting.reads

    prepared = await projection.handler.prepare([record(i, v) for i, v in enumerate(values)])

    assert counting.reads - before == 1
    assert prepared.checkpoint.dead_letters == []


async def test_truncated_avro_is_rejected_as_malformed(
    projection: Projection, clock: ManualClock
) -> None:
    value = await encoded(projection, reading(clock))

    report = await projection.handle([record(0, value[:9])])

    assert [r.error_class for r in report.dead_lettered] == ["malformed_payload"]


async def test_reading_beyond_threshold_raises_one_alert(
    projection: Projection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    hot = await encoded(projection, reading(clock, value=75.0))

    report = await projection.handle([record(0, hot)])

    [alert] = report.events
    assert alert.severity == "critical"  # type: ignore[attr-defined]
    assert [a.alert_id for a in await store.alerts()] == [alert.alert_id]  # type: ignore[attr-defined]


async def test_handling_the_same_batch_twice_changes_nothing(
    projection: Projection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    values = [
        await encoded(projection, reading(clock, f"temp-{i:04d}", value=75.0)) for i in range(4)
    ]
    batch = [record(i, v) for i, v in enumerate(values)]
    await projection.handle(batch)

    again = await projection.handle(batch)

    assert sum(again.written.values()) == 0
    assert again.skipped == 4  # fenced: the group's offsets are past the batch's start
    assert again.events == ()
    assert await store.count_readings() == 4
    assert len(await store.alerts()) == 4


async def test_a_windows_statistics_are_those_of_its_readings_across_batches(
    projection: Projection, store: InMemorySensorStore, clock: ManualClock
) -> None:
    start = clock.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    values = [20.0, 22.0, 21.0, 25.0]
    encoded_values = [
        await encoded(
            projection, reading(clock, timestamp=start + timedelta(seconds=10 * i), value=v)
        )
        for i, v in enumerate(values)
    ]

    await projection.handle([record(0, encoded_values[0]), record(1, encoded_values[1])])
    await projection.handle([record(2, encoded_values[2]), record(3, encoded_values[3])])

    [window] = await store.aggregates("temp-0001", start, start + timedelta(minutes=1))
    assert (window.count, window.min, window.max) == (4, 20.0, 25.0)
    assert window.mean == pytest.approx(22.0)
