"""Dead letters on the in-memory adapters: every record the sensors worker reads ends either in
the projection or, once, on `<topic>.dlq` and in the store, with headers saying why; offsets
advance past both, and the dead letters are acknowledged before the offsets are stored."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from pipeline.adapters.avro import reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.adapters.memory.log import batch_bytes
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
    H_TRUNCATED,
    H_VALUE_BYTES,
    H_WORKER_ID,
    dead_letter_headers,
    dead_letter_of,
    dead_letter_topic,
)
from pipeline.application.errors import PublishError, StoreUnavailable
from pipeline.application.ports import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES,
    DeadLetterFilter,
    EventLog,
    Record,
    TopicPartition,
    TopicSpec,
)
from pipeline.application.runtime.handler import JobHandler, PreparedBatch
from pipeline.application.runtime.report import BatchReport
from pipeline.application.topic_names import DERIVED_RECORD_HEADROOM_BYTES
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
            job=sensor_job(SensorJobConfig(topic=TOPIC)),
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


# -- records at and over the size limits -------------------------------------------------


async def test_a_record_at_its_topics_size_limit_lands_whole_on_the_dead_letter_topic(
    pipeline: Pipeline, clock: ManualClock
) -> None:
    topic = pipeline.settings.topics.sensor_readings
    value = b"\x07" + bytes(DEFAULT_MAX_MESSAGE_BYTES)
    while batch_bytes(b"big", value, ()) > DEFAULT_MAX_MESSAGE_BYTES:
        value = value[:-1]
    assert batch_bytes(b"big", value, ()) == DEFAULT_MAX_MESSAGE_BYTES
    await pipeline.log.publish(topic, b"big", value)
    await pipeline.log.publish(
        topic, b"temp-0001", await pipeline.reading_codec.encode(reading(clock))
    )

    await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    (letter,) = await read_all(pipeline.log, dead_letter_topic(topic))
    assert letter.value == value
    assert H_TRUNCATED not in dict(letter.headers)
    assert await pipeline.store.count_readings() == 1


async def small_dead_letter_topic(log: InMemoryEventLog, limit: int) -> None:
    """The readings topic, and a dead-letter topic too small for its largest records (one
    made by hand, whose limit nobody raised)."""
    await log.ensure_topics(
        [
            TopicSpec(name=TOPIC, partitions=1),
            TopicSpec(
                name=dead_letter_topic(TOPIC),
                partitions=1,
                config={MAX_MESSAGE_BYTES: str(limit)},
            ),
        ]
    )


def projection_on(
    log: InMemoryEventLog, store: InMemorySensorStore, clock: ManualClock
) -> Projection:
    """The sensors job's handler publishing dead letters to `log`, committing to `store`."""
    return Projection(log, checkpoint_for(store), clock)


async def test_a_dead_letter_too_large_for_its_topic_goes_without_its_value_and_is_kept_whole(
    clock: ManualClock,
) -> None:
    log, store = InMemoryEventLog(), InMemorySensorStore()
    await small_dead_letter_topic(log, 3_000)
    big = Record(
        topic=TOPIC, partition=0, offset=0, key=b"k", value=b"\x07" * 5_000, timestamp_ms=1_000
    )

    with capture_logs() as logs:
        await projection_on(log, store, clock).handle([big, bad_record(1)])

    letters = sorted(
        await read_all(log, dead_letter_topic(TOPIC)), key=lambda x: dict(x.headers)[H_OFFSET]
    )
    assert [(x.key, x.value) for x in letters] == [(b"k", None), (b"k", b"\x07bad")]
    headers = dict(letters[0].headers)
    assert headers[H_TRUNCATED] == b"value"
    assert headers[H_VALUE_BYTES] == b"5000"
    assert headers[H_OFFSET] == b"0"
    kept = await store.dead_letters.dead_letter(TOPIC, 0, 0)
    assert kept is not None
    assert kept.value == big.value
    assert await checkpoint_for(store).stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {
        TopicPartition(TOPIC, 0): 2
    }
    assert [(e["log_level"], e["count"]) for e in logs if "count" in e] == [("warning", 1)]


async def test_a_dead_letter_too_large_even_without_its_value_goes_without_key_and_headers(
    clock: ManualClock,
) -> None:
    log, store = InMemoryEventLog(), InMemorySensorStore()
    await small_dead_letter_topic(log, 3_000)
    big = Record(
        topic=TOPIC,
        partition=0,
        offset=0,
        key=b"k" * 4_000,
        value=b"\x07",
        timestamp_ms=1_000,
        headers=(("big", b"h" * 4_000),),
    )

    await projection_on(log, store, clock).handle([big])

    (letter,) = await read_all(log, dead_letter_topic(TOPIC))
    assert (letter.key, letter.value) == (None, None)
    assert "big" not in dict(letter.headers)
    assert dict(letter.headers)[H_TRUNCATED] == b"key,value,headers"
    kept = await store.dead_letters.dead_letter(TOPIC, 0, 0)
    assert kept is not None
    assert (kept.key, kept.value) == (big.key, big.value)


async def test_a_dead_letter_its_topic_refuses_for_good_is_kept_in_the_table_and_the_batch_stored(
    clock: ManualClock,
) -> None:
    log, store = InMemoryEventLog(), InMemorySensorStore()
    await log.ensure_topics([TopicSpec(name=TOPIC, partitions=1)])  # no dead-letter topic

    with capture_logs() as logs:
        await projection_on(log, store, clock).handle([bad_record(0)])

    assert await store.dead_letters.dead_letter(TOPIC, 0, 0) is not None
    assert await checkpoint_for(store).stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {
        TopicPartition(TOPIC, 0): 1
    }
    assert [(e["log_level"], e["count"]) for e in logs if "count" in e] == [("error", 1)]


def test_the_dead_letter_headers_fit_the_headroom_of_dead_letter_topics_whatever_the_error(
    clock: ManualClock,
) -> None:
    long_name = "t" * 249  # the longest topic name Kafka allows
    record = Record(
        topic=long_name, partition=2**31 - 1, offset=2**63 - 1, key=None, value=None, timestamp_ms=0
    )
    try:
        raise ValueError("é" * 100_000)  # noqa: TRY301 - a raised error has a stack trace
    except ValueError as error:
        letter = dead_letter_of(
            record, error, at=clock.now(), worker_id="w" * 5_000, group_id="g" * 5_000
        )

    headers = dead_letter_headers(letter)
    size = sum(len(name) + len(value) + 10 for name, value in headers)
    assert size + 200 < DERIVED_RECORD_HEADROOM_BYTES  # 200: the dlq.truncated markers
    assert dict(headers)[H_MESSAGE].decode().startswith("é" * 100)
    assert dict(headers)[H_STACK_TRACE].decode().endswith(letter.stack_trace[-100:])  # type: ignore[index]
    assert len(letter.message) == 100_000  # the table keeps it whole
