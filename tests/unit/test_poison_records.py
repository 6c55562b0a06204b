"""A record the store refuses for good becomes a dead letter; the rest of its batch is stored
with the batch's offsets, and the worker goes on. A failure that is not a record's fault
(the store refusing everything, an unmigrated database) is raised instead."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.adapters.avro import reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.errors import ConfigurationError, StoreRejected, StoreUnavailable
from pipeline.application.ports import DeadLetterFilter, Record, TopicPartition, TopicSpec
from pipeline.application.runtime.handler import JobHandler
from pipeline.application.runtime.poison import SYSTEMIC_AT
from pipeline.application.topic_names import dead_letter_topic
from pipeline.domain import Reading
from pipeline.jobs.sensors import SensorJobConfig, sensor_job
from tests.faults import FaultyCheckpoint
from tests.projection import checkpoint_for

TOPIC = "sensor-readings"
P0 = TopicPartition(TOPIC, 0)


def reading(clock: ManualClock, sensor: str) -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=21.5,
        unit="celsius",
        timestamp=clock.now() - timedelta(seconds=30),
        location="site-01",
    )


def refusing(*poison: str) -> object:
    """A readings row of one of these sensors is refused, like a database constraint would."""
    return lambda row: isinstance(row, Reading) and row.sensor_id in poison


class World:
    """The sensors job's handler over an in-memory log and store, with a store that refuses."""

    def __init__(self, clock: ManualClock, **faults: object) -> None:
        self.clock = clock
        self.log = InMemoryEventLog()
        self.sensors = InMemorySensorStore()
        self.store = FaultyCheckpoint(checkpoint_for(self.sensors), **faults)  # type: ignore[arg-type]
        self.codec = reading_codec(InMemorySchemaRegistry(), TOPIC)
        self.handler = JobHandler(
            job=sensor_job(SensorJobConfig(topic=TOPIC)),
            group_id="g",
            codecs={TOPIC: self.codec},
            store=self.store,
            log_=self.log,
            clock=clock,
            worker_id="w",
        )

    async def records(self, sensors: list[str]) -> list[Record]:
        await self.log.ensure_topics(
            [TopicSpec(name=name, partitions=1) for name in (TOPIC, dead_letter_topic(TOPIC))]
        )
        await self.handler.resolve([P0])
        return [
            Record(
                topic=TOPIC,
                partition=0,
                offset=offset,
                key=sensor.encode(),
                value=await self.codec.encode(reading(self.clock, sensor)),
                timestamp_ms=0,
            )
            for offset, sensor in enumerate(sensors)
        ]

    async def published(self) -> int:
        return sum((await self.log.end_offsets(dead_letter_topic(TOPIC))).values())


async def test_a_refused_record_is_dead_lettered_and_the_rest_of_its_batch_stored(
    clock: ManualClock,
) -> None:
    world = World(clock, refuse=refusing("temp-0007", "temp-0013"))
    records = await world.records([f"temp-{i:04d}" for i in range(20)])

    report = await world.handler.apply(await world.handler.prepare(records))

    assert await world.sensors.count_readings() == 18
    assert sorted((r.offset, r.error_class) for r in report.dead_lettered) == [
        (7, "store_rejected"),
        (13, "store_rejected"),
    ]
    assert await world.published() == 2
    stored = await world.sensors.dead_letters.find_dead_letters(DeadLetterFilter())
    assert sorted((letter.offset, letter.error_class) for letter in stored) == [
        (7, "store_rejected"),
        (13, "store_rejected"),
    ]
    assert await world.store.stored_offsets("g", [P0]) == {P0: 20}


async def test_any_exception_a_record_triggers_is_a_processing_error_dead_letter(
    clock: ManualClock,
) -> None:
    world = World(clock, refuse=refusing("temp-0001"), refusal=ValueError("cannot adapt value"))
    records = await world.records(["temp-0000", "temp-0001"])

    report = await world.handler.apply(await world.handler.prepare(records))

    assert [(r.offset, r.error_class) for r in report.dead_lettered] == [(1, "processing_error")]
    assert "cannot adapt value" in report.dead_lettered[0].reason
    assert await world.sensors.count_readings() == 1


async def test_a_store_that_refuses_every_record_stops_the_worker_instead(
    clock: ManualClock,
) -> None:
    sensors = [f"temp-{i:04d}" for i in range(SYSTEMIC_AT)]
    world = World(clock, refuse=refusing(*sensors))
    records = await world.records(sensors)

    with pytest.raises(StoreRejected):
        await world.handler.apply(await world.handler.prepare(records))

    assert await world.sensors.count_readings() == 0
    assert await world.store.stored_offsets("g", [P0]) == {}


async def test_a_small_batch_whose_records_all_fail_is_dead_lettered_not_stopped_on(
    clock: ManualClock,
) -> None:
    # Two bad records on a quiet stream prove nothing about the store: stopping would stop
    # on the same two records after every restart.
    sensors = ["temp-0001", "temp-0002"]
    world = World(clock, refuse=refusing(*sensors))
    records = await world.records(sensors)

    report = await world.handler.apply(await world.handler.prepare(records))

    assert sorted(r.offset for r in report.dead_lettered) == [0, 1]
    assert await world.store.stored_offsets("g", [P0]) == {P0: 2}


@pytest.mark.parametrize(
    "error", [ConfigurationError("no table readings"), StoreUnavailable("refused")]
)
async def test_failures_that_are_not_a_records_fault_are_never_bisected(
    clock: ManualClock, error: Exception
) -> None:
    world = World(clock, refuse=refusing("temp-0001"), refusal=error)
    records = await world.records(["temp-0000", "temp-0001"])

    with pytest.raises(type(error)):
        await world.handler.apply(await world.handler.prepare(records))

    assert world.store.attempts == 1  # the batch itself; no halves were tried


async def test_a_transient_failure_after_isolation_does_not_publish_the_poison_twice(
    clock: ManualClock,
) -> None:
    world = World(clock, refuse=refusing("temp-0002"))
    prepared = await world.handler.prepare(await world.records(["temp-0001", "temp-0002"]))
    # Refused as a whole, then isolated; the final transaction fails transiently once.
    world.store.fail_next = []
    original = world.store.commit
    failed = False

    async def flaky_final(batch):  # type: ignore[no-untyped-def]
        nonlocal failed
        if batch.next_offsets and batch.dead_letters and not failed:
            failed = True  # only the batch's own final transaction has both
            raise StoreUnavailable("connection reset")
        return await original(batch)

    world.store.commit = flaky_final  # type: ignore[method-assign]

    with pytest.raises(StoreUnavailable):
        await world.handler.apply(prepared)
    report = await world.handler.apply(prepared)  # what the worker's in-place retry does

    assert await world.published() == 1
    assert [r.offset for r in report.dead_lettered] == [1]
    assert await world.sensors.count_readings() == 1
    assert await world.store.stored_offsets("g", [P0]) == {P0: 2}
