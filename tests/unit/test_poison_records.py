"""A record the store refuses for good becomes a dead letter; the rest of its batch is stored
with the batch's offsets, and the worker goes on. A failure that is not a record's fault
(the store refusing everything, an unmigrated database) is raised instead."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.adapters.avro import reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.errors import ConfigurationError, StoreRejected, StoreUnavailable
from pipeline.application.poison import SYSTEMIC_AT
from pipeline.application.ports import (
    AppliedBatch,
    DeadLetter,
    DeadLetterFilter,
    Record,
    SensorBatch,
    TopicPartition,
)
from pipeline.application.sensors import SensorProjection
from pipeline.domain import Reading

TOPIC = "sensor-readings"


class RefusingStore(InMemorySensorStore):
    """The in-memory store, refusing (like a database constraint would) every transaction
    that holds a reading of a sensor named in `poison`; `fail_next` makes the following
    transactions fail with the given errors first."""

    def __init__(self, poison: set[str], error: Exception | None = None) -> None:
        super().__init__()
        self.poison = poison
        self.error = error or StoreRejected("new row violates check constraint")
        self.fail_next: list[Exception] = []
        self.transactions = 0

    async def apply(self, batch: SensorBatch) -> AppliedBatch:
        self.transactions += 1
        if self.fail_next:
            raise self.fail_next.pop(0)
        if any(p.reading.sensor_id in self.poison for p in batch.readings):
            raise self.error
        return await super().apply(batch)


class CountingPublisher:
    """Stands in for the DLQ topic: remembers what was published."""

    def __init__(self) -> None:
        self.published: list[DeadLetter] = []

    async def publish(self, letters: list[DeadLetter]) -> None:
        self.published.extend(letters)


def reading(clock: ManualClock, sensor: str) -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=21.5,
        unit="celsius",
        timestamp=clock.now() - timedelta(seconds=30),
        location="site-01",
    )


async def records(
    handler: SensorProjection, clock: ManualClock, sensors: list[str]
) -> list[Record]:
    codec = handler._codec  # the registry the projection decodes with
    return [
        Record(
            topic=TOPIC,
            partition=0,
            offset=offset,
            key=sensor.encode(),
            value=await codec.encode(reading(clock, sensor)),
            timestamp_ms=0,
        )
        for offset, sensor in enumerate(sensors)
    ]


def projection(
    store: InMemorySensorStore, clock: ManualClock, publisher: CountingPublisher | None = None
) -> SensorProjection:
    # The projection decodes with a codec on the same in-memory registry as `records`.
    return SensorProjection(
        group_id="g",
        codec=reading_codec(InMemorySchemaRegistry(), TOPIC),
        store=store,
        clock=clock,
        dead_letters=publisher,  # type: ignore[arg-type]
    )


async def test_a_refused_record_is_dead_lettered_and_the_rest_of_its_batch_stored(
    clock: ManualClock,
) -> None:
    sensors = [f"temp-{i:04d}" for i in range(20)]
    store = RefusingStore(poison={"temp-0007", "temp-0013"})
    publisher = CountingPublisher()

    handler = projection(store, clock, publisher)
    report = await handler.handle(await records(handler, clock, sensors))

    assert report.readings_inserted == 18
    assert await store.count_readings() == 18
    assert sorted((r.offset, r.error_class) for r in report.rejections) == [
        (7, "store_rejected"),
        (13, "store_rejected"),
    ]
    assert sorted(letter.offset for letter in publisher.published) == [7, 13]
    stored = await store.dead_letters.find_dead_letters(DeadLetterFilter())
    assert sorted((letter.offset, letter.error_class) for letter in stored) == [
        (7, "store_rejected"),
        (13, "store_rejected"),
    ]
    assert await store.stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {
        TopicPartition(TOPIC, 0): 20
    }


async def test_any_exception_a_record_triggers_is_a_processing_error_dead_letter(
    clock: ManualClock,
) -> None:
    store = RefusingStore(poison={"temp-0001"}, error=ValueError("cannot adapt value"))

    handler = projection(store, clock)
    report = await handler.handle(await records(handler, clock, ["temp-0000", "temp-0001"]))

    assert [(r.offset, r.error_class) for r in report.rejections] == [(1, "processing_error")]
    assert "cannot adapt value" in report.rejections[0].reason
    assert await store.count_readings() == 1


async def test_a_store_that_refuses_every_record_stops_the_worker_instead(
    clock: ManualClock,
) -> None:
    sensors = [f"temp-{i:04d}" for i in range(SYSTEMIC_AT)]
    store = RefusingStore(poison=set(sensors))
    handler = projection(store, clock)

    with pytest.raises(StoreRejected):
        await handler.handle(await records(handler, clock, sensors))

    assert await store.count_readings() == 0
    assert await store.stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {}


async def test_a_small_batch_whose_records_all_fail_is_dead_lettered_not_stopped_on(
    clock: ManualClock,
) -> None:
    # Two bad records on a quiet stream prove nothing about the store: stopping would stop
    # on the same two records after every restart.
    sensors = ["temp-0001", "temp-0002"]
    store = RefusingStore(poison=set(sensors))
    handler = projection(store, clock)

    report = await handler.handle(await records(handler, clock, sensors))

    assert sorted(r.offset for r in report.rejections) == [0, 1]
    assert await store.stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {
        TopicPartition(TOPIC, 0): 2
    }


@pytest.mark.parametrize(
    "error", [ConfigurationError("no table readings"), StoreUnavailable("refused")]
)
async def test_failures_that_are_not_a_records_fault_are_never_bisected(
    clock: ManualClock, error: Exception
) -> None:
    store = RefusingStore(poison={"temp-0001"}, error=error)
    handler = projection(store, clock)

    with pytest.raises(type(error)):
        await handler.handle(await records(handler, clock, ["temp-0000", "temp-0001"]))

    assert store.transactions == 1  # the batch itself; no halves were tried


async def test_a_transient_failure_after_isolation_does_not_publish_the_poison_twice(
    clock: ManualClock,
) -> None:
    store = RefusingStore(poison={"temp-0002"})
    publisher = CountingPublisher()
    handler = projection(store, clock, publisher)
    prepared = await handler.prepare(await records(handler, clock, ["temp-0001", "temp-0002"]))
    # Refused as a whole, then isolated; the final transaction fails transiently once.
    original_apply = store.apply
    failed = False

    async def flaky_final(batch: SensorBatch) -> AppliedBatch:
        nonlocal failed
        if batch.next_offsets and batch.dead_letters and not failed:
            failed = True  # only the batch's own final transaction has both
            raise StoreUnavailable("connection reset")
        return await original_apply(batch)

    store.apply = flaky_final  # type: ignore[method-assign]

    with pytest.raises(StoreUnavailable):
        await handler.apply(prepared)
    report = await handler.apply(prepared)  # what the worker's in-place retry does

    assert [letter.offset for letter in publisher.published] == [1]
    assert [r.offset for r in report.rejections] == [1]
    assert await store.count_readings() == 1
    assert await store.stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {
        TopicPartition(TOPIC, 0): 2
    }
