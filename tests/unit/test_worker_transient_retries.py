"""Transient failures of a batch: retried in place with the partitions paused (the consumer
keeps polling), then through the retry topics to the DLQ when the dependency is healthy,
never for an outage. In-memory log and store; faults injected by wrapping the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import pytest
from pydantic import ValidationError

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application import dead_letters as dlq
from pipeline.application.dead_letters import dead_letter_topic
from pipeline.application.errors import StoreUnavailable
from pipeline.application.ports import (
    DeadLetterFilter,
    EventConsumer,
    EventLog,
    Record,
    TopicPartition,
)
from pipeline.application.retries import (
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_FIRST_FAILURE,
    H_MESSAGE,
    H_NOT_BEFORE,
    H_OFFSET,
    H_PARTITION,
    H_TOPIC,
    retry_topic,
)
from pipeline.application.runtime.consumer_loop import ConsumerWorker
from pipeline.application.runtime.report import BatchReport
from pipeline.application.runtime.retry_policy import RetryPolicy
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import RetrySettings, Settings
from pipeline.entrypoints.worker import run_named_job
from tests.faults import FaultyCheckpoint
from tests.projection import checkpoint_for
from tests.unit.test_consumer_worker import TOPIC, RecordingHandler, log_with

FAST = RetryPolicy(initial=0.01, maximum=0.05)


class SpyConsumer:
    """Delegates to a real consumer and records pauses, resumes and polls made while paused."""

    def __init__(self, inner: EventConsumer) -> None:
        self._inner = inner
        self.paused = False
        self.pauses = 0
        self.resumes = 0
        self.paused_polls: list[list[Record]] = []

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        records = await self._inner.poll(max_records, timeout)
        if self.paused:
            self.paused_polls.append(records)
        return records

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self._inner.commit(offsets)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._inner.assignment()

    async def lag(self) -> int:
        return await self._inner.lag()

    async def pause(self) -> None:
        self.paused, self.pauses = True, self.pauses + 1
        await self._inner.pause()

    async def resume(self) -> None:
        self.paused, self.resumes = False, self.resumes + 1
        await self._inner.resume()

    async def close(self) -> None:
        await self._inner.close()


class PublishingWhileFailing(RecordingHandler):
    """Fails its first applies and publishes new records meanwhile, as producers would."""

    def __init__(self, log: InMemoryEventLog, failures: int) -> None:
        super().__init__(failures=failures)
        self._log = log

    async def apply(self, records: list[Record]) -> BatchReport:
        if self.failures:
            await self._log.publish(TOPIC, b"k", f"late{self.calls}".encode())
        return await super().apply(records)


async def test_a_batch_failing_transiently_is_retried_with_the_consumer_paused_and_polling() -> (
    None
):
    log = await log_with(3)
    handler = PublishingWhileFailing(log, failures=3)
    spy = SpyConsumer(log.consumer(group_id="g", topics=[TOPIC]))
    worker = ConsumerWorker(
        consumer=spy,
        handler=handler,
        batch_size=100,
        batch_timeout=0.05,
        until_caught_up=True,
        retry=RetryPolicy(initial=0.3, maximum=0.3),
    )

    stats = await asyncio.wait_for(worker.run(), 10)

    assert handler.handled == [0, 1, 2, 3, 4, 5]
    assert (spy.pauses, spy.resumes) == (1, 1)
    assert len(spy.paused_polls) >= 3  # keep-alive polls during the three backoffs
    assert all(batch == [] for batch in spy.paused_polls)
    assert stats.retried_in_place == 1
    assert stats.pauses == 1
    assert stats.paused_seconds >= 0.3


class LeakyConsumer(SpyConsumer):
    """A consumer whose pause does not hold records back (an adapter bug)."""

    async def pause(self) -> None:
        self.paused, self.pauses = True, self.pauses + 1

    async def resume(self) -> None:
        self.paused, self.resumes = False, self.resumes + 1


async def test_records_a_paused_poll_returns_anyway_are_handled_once_after_the_batch() -> None:
    log = await log_with(3)
    handler = PublishingWhileFailing(log, failures=3)
    leaky = LeakyConsumer(log.consumer(group_id="g", topics=[TOPIC]))
    worker = ConsumerWorker(
        consumer=leaky,
        handler=handler,
        batch_size=100,
        batch_timeout=0.05,
        until_caught_up=True,
        retry=RetryPolicy(initial=0.2, maximum=0.2),
    )

    await asyncio.wait_for(worker.run(), 10)

    assert any(leaky.paused_polls), "the leak was exercised"
    assert handler.handled == [0, 1, 2, 3, 4, 5]


async def test_without_a_diverter_an_exhausted_budget_re_raises_and_commits_nothing() -> None:
    log = await log_with(3)
    handler = RecordingHandler(failures=5)
    worker = ConsumerWorker(
        consumer=log.consumer(group_id="g", topics=[TOPIC]),
        handler=handler,
        batch_size=100,
        batch_timeout=0.05,
        retry=RetryPolicy(initial=0.01, maximum=0.01, attempts=2),
    )

    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(worker.run(), 5)

    assert handler.calls == 2
    again = RecordingHandler()
    await asyncio.wait_for(
        ConsumerWorker(
            consumer=log.consumer(group_id="g", topics=[TOPIC]),
            handler=again,
            batch_size=100,
            batch_timeout=0.05,
            until_caught_up=True,
        ).run(),
        5,
    )
    assert again.handled == [0, 1, 2]


async def pipeline_with(
    *delays: float, failures: int = 0, attempts: int = 2
) -> tuple[Pipeline, FaultyCheckpoint]:
    """An in-memory pipeline whose checkpoint commits of batches with rows fail transiently
    `failures` times, as a deadlock would (the database answers pings); the store's `down`
    makes every commit and ping fail, as an outage would."""
    retry = RetrySettings(
        in_place_attempts=attempts,
        initial_backoff_s=0.01,
        max_backoff_s=0.05,
        topic_delays_s=list(delays),
    )
    sensors = InMemorySensorStore()
    store = FaultyCheckpoint(
        checkpoint_for(sensors),
        failures=failures,
        only_with_rows=True,
        error=StoreUnavailable("deadlock detected"),
    )
    pipeline = await bootstrap(
        Settings(retry=retry),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=sensors,
        checkpoint=store,
    )
    await pipeline.ensure_topics()
    return pipeline, store


async def read_all(log: EventLog, topic: str) -> list[Record]:
    ends = await log.end_offsets(topic)
    reader = log.reader(group_id="inspect", start={TopicPartition(topic, p): 0 for p in ends})
    records: list[Record] = []
    while len(records) < sum(ends.values()):
        records += await reader.poll(1000, 0.1)
    await reader.close()
    return records


def header(record: Record, name: str) -> str:
    return dict(record.headers)[name].decode()


async def test_a_batch_failing_with_a_healthy_store_goes_through_retry_1_then_is_stored() -> None:
    pipeline, _ = await pipeline_with(0.5, 0.5, failures=2)
    readings = pipeline.settings.topics.sensor_readings
    await produce_sensors(pipeline, count=40, rate=0, seed=1, sensors=4)
    source = {(r.partition, r.offset): r for r in await read_all(pipeline.log, readings)}

    started = time.time()
    stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    retried = await read_all(pipeline.log, retry_topic(readings, 1))
    assert len(retried) == 40
    for record in retried:
        original = source[(int(header(record, H_PARTITION)), int(header(record, H_OFFSET)))]
        assert header(record, H_TOPIC) == readings
        assert (record.key, record.value) == (original.key, original.value)
        assert record.timestamp_ms == original.timestamp_ms
        assert header(record, H_ATTEMPTS) == "2"
        assert header(record, H_ERROR_CLASS) == "store_unavailable"
        assert header(record, H_MESSAGE) == "deadlock detected"
        assert header(record, H_FIRST_FAILURE)
        assert int(header(record, H_NOT_BEFORE)) >= started * 1000 + 500
    assert await pipeline.store.count_readings() == 40
    assert time.time() - started >= 0.5  # stored only after the retry topic's delay
    assert stats.sent_to_retry == {retry_topic(readings, 1): 40}
    assert await pipeline.log.end_offsets(dead_letter_topic(readings)) == dict.fromkeys(range(6), 0)


async def test_a_batch_failing_at_the_last_retry_level_becomes_a_dead_letter() -> None:
    pipeline, _ = await pipeline_with(0.1, failures=1_000)
    readings = pipeline.settings.topics.sensor_readings
    await produce_sensors(pipeline, count=20, rate=0, seed=1, sensors=4)
    source = {(r.partition, r.offset) for r in await read_all(pipeline.log, readings)}

    stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    letters = await read_all(pipeline.log, dead_letter_topic(readings))
    assert len(letters) == 20
    assert {header(r, dlq.H_TOPIC) for r in letters} == {readings}
    assert {header(r, dlq.H_ERROR_CLASS) for r in letters} == {"store_unavailable"}
    assert {header(r, dlq.H_ATTEMPTS) for r in letters} == {"4"}  # 2 in place, twice
    stored = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter(), limit=100)
    assert {(letter.partition, letter.offset) for letter in stored} == source
    assert {letter.topic for letter in stored} == {readings}
    assert await pipeline.store.count_readings() == 0
    assert stats.sent_to_retry[dead_letter_topic(readings)] == 20


async def test_an_outage_is_waited_out_in_place_and_never_routed() -> None:
    pipeline, store = await pipeline_with(0.1, attempts=2)
    store.down = True
    readings = pipeline.settings.topics.sensor_readings
    await produce_sensors(pipeline, count=30, rate=0, seed=1, sensors=3)
    stop = asyncio.Event()
    running = asyncio.create_task(run_named_job(pipeline, "sensors", stop=stop))
    while store.failed < 6:  # well past the in-place budget
        await asyncio.sleep(0.01)

    store.down = False
    deadline = time.monotonic() + 10
    while await pipeline.store.count_readings() < 30:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    stop.set()
    stats = await asyncio.wait_for(running, 5)

    assert await pipeline.log.end_offsets(retry_topic(readings, 1)) == dict.fromkeys(range(6), 0)
    assert await pipeline.log.end_offsets(dead_letter_topic(readings)) == dict.fromkeys(range(6), 0)
    assert stats.pauses >= 1
    assert not stats.sent_to_retry


async def test_a_stop_request_ends_an_outage_wait_cleanly_without_committing() -> None:
    pipeline, store = await pipeline_with(0.1)
    store.down = True
    await produce_sensors(pipeline, count=10, rate=0, seed=1, sensors=2)
    stop = asyncio.Event()
    running = asyncio.create_task(run_named_job(pipeline, "sensors", stop=stop))
    while store.failed < 3:
        await asyncio.sleep(0.01)

    stop.set()
    stats = await asyncio.wait_for(running, 5)  # a stop, not a failure

    assert stats.written.get("readings", 0) == 0
    assert (
        await store.stored_offsets(
            "pipeline-sensors", [TopicPartition(pipeline.settings.topics.sensor_readings, 0)]
        )
        == {}
    )
    store.down = False
    await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)
    assert await pipeline.store.count_readings() == 10


@pytest.mark.parametrize(
    "values",
    [
        {"in_place_attempts": 0},
        {"initial_backoff_s": 0},
        {"initial_backoff_s": 20, "max_backoff_s": 10},
        {"topic_delays_s": [-1]},
        {"topic_delays_s": [1] * 11},
    ],
)
def test_impossible_retry_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=r"retry|greater|less"):
        Settings(retry=values)


def test_the_retry_section_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_RETRY__IN_PLACE_ATTEMPTS", "3")
    monkeypatch.setenv("PIPELINE_RETRY__TOPIC_DELAYS_S", "[1, 2]")

    retry = Settings().retry

    assert (retry.in_place_attempts, retry.topic_delays_s) == (3, [1.0, 2.0])


async def test_the_readings_topic_has_one_retry_topic_per_delay_partitioned_like_it() -> None:
    pipeline, _ = await pipeline_with(1, 2, 3)
    readings = pipeline.settings.topics.sensor_readings

    specs = {spec.name: spec for spec in pipeline.topic_specs()}

    partitions = specs[readings].partitions
    assert [specs[retry_topic(readings, n)].partitions for n in (1, 2, 3)] == [partitions] * 3
    assert retry_topic(readings, 4) not in specs


async def test_a_diverted_batch_moves_only_its_readings_and_keeps_its_dead_letters() -> None:
    # A batch holding an undecodable record keeps failing while the database answers: only
    # its readings go to the retry topic; the bad record stays one dead letter on the
    # readings topic's DLQ and in the table, and no retry-level worker ever sees it.
    pipeline, _ = await pipeline_with(0.1, failures=1_000)
    readings = pipeline.settings.topics.sensor_readings
    await produce_sensors(pipeline, count=12, rate=0, seed=1, sensors=4)
    await pipeline.log.publish(readings, b"garbage", b"\x07 not wire format")
    await pipeline.log.flush()

    stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    assert len(await read_all(pipeline.log, retry_topic(readings, 1))) == 12
    letters = await read_all(pipeline.log, dead_letter_topic(readings))
    by_class: dict[str, list[Record]] = {}
    for letter in letters:
        by_class.setdefault(header(letter, dlq.H_ERROR_CLASS), []).append(letter)
    assert len(by_class["bad_magic_byte"]) == 1  # published once, never retried
    assert by_class["bad_magic_byte"][0].key == b"garbage"
    assert len(by_class["store_unavailable"]) == 12  # the readings, past the last level
    assert {header(r, dlq.H_TOPIC) for r in letters} == {readings}
    stored = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter(), limit=100)
    assert sorted(letter.error_class for letter in stored).count("bad_magic_byte") == 1
    assert {letter.topic for letter in stored} == {readings}
    assert stats.rejected["bad_magic_byte"] == 1


async def test_a_record_invalid_on_a_retry_topic_is_dead_lettered_under_its_origin() -> None:
    pipeline, _ = await pipeline_with(0.01)
    readings = pipeline.settings.topics.sensor_readings
    retry_1 = retry_topic(readings, 1)
    origin = [
        (H_TOPIC, readings.encode()),
        (H_PARTITION, b"3"),
        (H_OFFSET, b"41"),
        (H_ATTEMPTS, b"2"),
        (H_FIRST_FAILURE, b"2026-11-25T12:00:00+00:00"),
        (H_NOT_BEFORE, b"0"),
    ]
    await pipeline.log.publish(retry_1, b"k", b"\x07 not wire format", origin)
    await pipeline.log.flush()

    await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    letters = await read_all(pipeline.log, dead_letter_topic(readings))
    assert len(letters) == 1
    assert (header(letters[0], dlq.H_TOPIC), header(letters[0], dlq.H_OFFSET)) == (readings, "41")
    assert not any(name.startswith("retry.") for name, _ in letters[0].headers)
    stored = await pipeline.dead_letter_store().dead_letter(readings, 3, 41)
    assert stored is not None
    assert stored.error_class == "bad_magic_byte"
