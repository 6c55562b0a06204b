"""Dead letters on the in-memory adapters: every record the sensors worker reads ends either in
the projection or, once, on `<topic>.dlq` and in the store, with headers saying why; offsets
advance past both, and the dead letters are acknowledged before the offsets are stored."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from pipeline.adapters.avro import reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.dead_letters import (
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_FIRST_FAILURE,
    H_GROUP_ID,
    H_LAST_FAILURE,
    H_MESSAGE,
    H_OFFSET,
    H_PARTITION,
    H_STACK_TRACE,
    H_TOPIC,
    H_WORKER_ID,
    dead_letter_of,
    dead_letter_topic,
)
from pipeline.application.errors import PublishError, StoreUnavailable
from pipeline.application.ports import (
    DeadLetterFilter,
    EventLog,
    Record,
    TopicPartition,
    TopicSpec,
)
from pipeline.application.runtime.handler import JobHandler, PreparedBatch
from pipeline.application.runtime.report import BatchReport
from pipeline.domain import Reading
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job
from pipeline.jobs.sensors import SensorJobConfig, sensor_job
from tests.faults import FaultyCheckpoint
from tests.projection import checkpoint_for

PARTITIONS = 6
TOPIC = "sensor-readings"


def reading(clock: ManualClock, sensor: str = "temp-0001", value: float = 21.5) -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=clock.now() - timedelta(seconds=30),
        location="site-01/floor-1",
    )


@pytest.fixture
async def pipeline(clock: ManualClock) -> Pipeline:
    pipeline = await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
        clock=clock,
    )
    await pipeline.ensure_topics()
    return pipeline


async def read_all(log: EventLog, topic: str) -> list[Record]:
    ends = await log.end_offsets(topic)
    reader = log.reader(
        group_id="inspect", start={TopicPartition(topic, p): 0 for p in sorted(ends)}
    )
    records: list[Record] = []
    while len(records) < sum(ends.values()):
        records += await reader.poll(1000, 0.1)
    await reader.close()
    return records


async def test_bad_records_land_once_on_the_dead_letter_topic_and_good_ones_in_the_store(
    pipeline: Pipeline, clock: ManualClock
) -> None:
    topic = pipeline.settings.topics.sensor_readings
    codec = pipeline.reading_codec
    good = await codec.encode(reading(clock))
    impossible = await codec.encode(reading(clock, "temp-0002", value=-500.0))
    await pipeline.log.publish(topic, b"temp-0001", good)
    await pipeline.log.publish(topic, b"temp-0009", b"\x07random bytes", timestamp_ms=1234)
    await pipeline.log.publish(topic, b"temp-0002", impossible)
    await pipeline.log.publish(topic, b"temp-0003", good[:-4])

    stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    assert await pipeline.store.count_readings() == 1
    assert stats.rejected == {
        "bad_magic_byte": 1,
        "reading_out_of_range": 1,
        "malformed_payload": 1,
    }
    letters = await read_all(pipeline.log, dead_letter_topic(topic))
    assert sorted(dict(r.headers)[H_ERROR_CLASS] for r in letters) == [
        b"bad_magic_byte",
        b"malformed_payload",
        b"reading_out_of_range",
    ]
    stored = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter())
    assert sorted(x.error_class for x in stored) == [
        "bad_magic_byte",
        "malformed_payload",
        "reading_out_of_range",
    ]
    ends = await pipeline.log.end_offsets(topic)
    offsets = await pipeline.checkpoint.stored_offsets(
        pipeline.group_id("sensors"), [TopicPartition(topic, p) for p in ends]
    )
    assert {tp.partition: o for tp, o in offsets.items()} == {
        p: end for p, end in ends.items() if end
    }


async def test_a_dead_letter_keeps_key_value_timestamp_and_partition_and_says_why(
    pipeline: Pipeline,
) -> None:
    topic = pipeline.settings.topics.sensor_readings
    await pipeline.log.publish(
        topic, b"temp-0009", b"\x07random bytes", [("trace-id", b"abc")], timestamp_ms=1234
    )
    (original,) = await read_all(pipeline.log, topic)

    await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    (letter,) = await read_all(pipeline.log, dead_letter_topic(topic))
    assert (letter.key, letter.value, letter.timestamp_ms) == (
        b"temp-0009",
        b"\x07random bytes",
        1234,
    )
    assert letter.partition == original.partition
    headers = dict(letter.headers)
    assert headers["trace-id"] == b"abc"
    assert headers[H_TOPIC] == topic.encode()
    assert headers[H_PARTITION] == str(original.partition).encode()
    assert headers[H_OFFSET] == str(original.offset).encode()
    assert headers[H_ERROR_CLASS] == b"bad_magic_byte"
    assert b"magic byte" in headers[H_MESSAGE]
    assert headers[H_ATTEMPTS] == b"1"
    failed_at = datetime.fromisoformat(headers[H_LAST_FAILURE].decode())
    assert failed_at == pipeline.clock.now()
    assert headers[H_FIRST_FAILURE] == headers[H_LAST_FAILURE]
    assert headers[H_WORKER_ID] == pipeline.worker_id.encode()
    assert headers[H_GROUP_ID] == pipeline.group_id("sensors").encode()
    assert H_STACK_TRACE not in headers  # a decode error is answered, never raised


async def test_an_invalid_reading_carries_the_stack_trace_of_its_domain_error(
    pipeline: Pipeline, clock: ManualClock
) -> None:
    topic = pipeline.settings.topics.sensor_readings
    value = await pipeline.reading_codec.encode(reading(clock, value=-500.0))
    await pipeline.log.publish(topic, b"temp-0001", value)

    await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    (letter,) = await read_all(pipeline.log, dead_letter_topic(topic))
    trace = dict(letter.headers)[H_STACK_TRACE].decode()
    assert trace.startswith("Traceback")
    assert "ReadingOutOfRange" in trace


async def test_the_dead_letter_topic_is_created_with_the_partitions_of_its_topic(
    pipeline: Pipeline,
) -> None:
    specs = {spec.name: spec.partitions for spec in pipeline.topic_specs()}

    topic = pipeline.settings.topics.sensor_readings
    assert specs[dead_letter_topic(topic)] == specs[topic] == PARTITIONS
    assert len(await pipeline.log.end_offsets(dead_letter_topic(topic))) == PARTITIONS


class RecordingLog(InMemoryEventLog):
    """An in-memory log that notes flushes, and can refuse them."""

    def __init__(self, events: list[str], *, fail: bool = False) -> None:
        super().__init__()
        self._events = events
        self._fail = fail

    async def flush(self, timeout: float = 30.0) -> None:
        if self._fail:
            raise PublishError("broker refused the record")
        self._events.append("flush")


class Projection:
    """The sensors job's handler for group `g` over `log` and `store`, as a worker runs it."""

    def __init__(
        self, log: InMemoryEventLog | None, store: Any, clock: ManualClock, *, group: str = "g"
    ) -> None:
        self.handler = JobHandler(
            job=sensor_job(SensorJobConfig(topic=TOPIC), clock),
            group_id=group,
            codecs={TOPIC: reading_codec(InMemorySchemaRegistry(), TOPIC)},
            store=store,
            log_=log,
            clock=clock,
            worker_id="w1",
        )
        self._resolved = False

    async def prepare(self, records: list[Record]) -> PreparedBatch:
        if not self._resolved:
            await self.handler.resolve([TopicPartition(TOPIC, 0)])
            self._resolved = True
        return await self.handler.prepare(records)

    async def apply(self, prepared: PreparedBatch) -> BatchReport:
        return await self.handler.apply(prepared)

    async def handle(self, records: list[Record]) -> BatchReport:
        return await self.apply(await self.prepare(records))


async def projection_over(log: InMemoryEventLog, store: Any, clock: ManualClock) -> Projection:
    await log.ensure_topics(
        [
            TopicSpec(name=TOPIC, partitions=1),
            TopicSpec(name=dead_letter_topic(TOPIC), partitions=1),
        ]
    )
    return Projection(log, store, clock)


def bad_record(offset: int) -> Record:
    return Record(
        topic=TOPIC,
        partition=0,
        offset=offset,
        key=b"k",
        value=b"\x07bad",
        timestamp_ms=1_000,
    )


async def test_dead_letters_are_acknowledged_before_the_batch_and_its_offsets_are_stored(
    clock: ManualClock,
) -> None:
    events: list[str] = []
    store = FaultyCheckpoint(checkpoint_for(InMemorySensorStore()), events=events)
    projection = await projection_over(RecordingLog(events), store, clock)

    await projection.handle([bad_record(0)])

    assert events == ["flush", "commit"]


async def test_a_refused_dead_letter_stores_neither_the_batch_nor_its_offsets(
    clock: ManualClock,
) -> None:
    events: list[str] = []
    store = FaultyCheckpoint(checkpoint_for(InMemorySensorStore()), events=events)
    projection = await projection_over(RecordingLog(events, fail=True), store, clock)

    with pytest.raises(PublishError):
        await projection.handle([bad_record(0)])

    assert events == []
    assert await store.stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {}


async def test_a_batch_retried_after_a_transient_store_failure_dead_letters_its_records_once(
    clock: ManualClock,
) -> None:
    events: list[str] = []
    log = RecordingLog(events)
    sensors = InMemorySensorStore()
    store = FaultyCheckpoint(checkpoint_for(sensors), failures=1, events=events)
    projection = await projection_over(log, store, clock)
    prepared = await projection.prepare([bad_record(0), bad_record(1)])

    with pytest.raises(StoreUnavailable):
        await projection.apply(prepared)
    await projection.apply(prepared)

    assert events == ["flush", "commit"]
    assert sum((await log.end_offsets(dead_letter_topic(TOPIC))).values()) == 2
    stored = await sensors.dead_letters.find_dead_letters(DeadLetterFilter())
    assert [(x.offset, x.worker_id) for x in stored] == [(0, "w1"), (1, "w1")]


async def test_a_replay_stores_dead_letters_without_publishing_them_again(
    pipeline: Pipeline,
) -> None:
    projection = Projection(None, pipeline.checkpoint, pipeline.clock, group="replay")  # type: ignore[arg-type]
    record = Record(
        topic=pipeline.settings.topics.sensor_readings,
        partition=0,
        offset=0,
        key=None,
        value=None,
        timestamp_ms=1_767_225_600_000,
    )

    await projection.handle([record])

    dlq = dead_letter_topic(pipeline.settings.topics.sensor_readings)
    assert sum((await pipeline.log.end_offsets(dlq)).values()) == 0
    (stored,) = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter())
    assert (stored.error_class, stored.value) == ("missing_value", None)


def test_a_nul_quoted_in_an_error_message_is_escaped_so_the_dead_letter_can_be_stored(
    clock: ManualClock,
) -> None:
    error = ValueError("unknown sensor type 'temp\x00x'")

    letter = dead_letter_of(bad_record(3), error, at=clock.now(), worker_id="w", group_id="g")

    assert "\x00" not in letter.message
    assert letter.message == "unknown sensor type 'temp\\x00x'"
    assert letter.error_class == "processing_error"
