"""The generic runtime running a job under database authority: one transaction per batch
for rows, window state and offsets; dead letters, late records, fencing, idle partitions,
poison rows and retry topics — on the in-memory log and checkpoint store."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog.testing

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.adapters.memory.log_consumer import InMemoryGroupConsumer
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import DeadLetterFilter, Record, TopicPartition, TopicSpec
from pipeline.application.ports.checkpoint import SinkResult
from pipeline.application.runtime.handler import JobHandler
from pipeline.application.runtime.retry_policy import RetryPolicy
from pipeline.application.runtime.runner import JobRun, run_job
from pipeline.application.runtime.stats import WorkerStats
from tests.faults import FaultyCheckpoint
from tests.unit.runtime.jobs import ListSink, Tick, TickCodec, tick_job

TOPIC = "ticks"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Sinks:
    def __init__(self, refuse: Any = None) -> None:
        self.ticks = ListSink(lambda t: (t.key, t.at), refuse=refuse)
        self.counts = ListSink(lambda w: (w.key, w.window))

    def count(self, key: str, start: datetime) -> int:
        found = [
            w for w in self.counts.rows.values() if w.key == key and w.window.start_time == start
        ]
        return found[0].value if found else 0


@pytest.fixture
async def log() -> InMemoryEventLog:
    log = InMemoryEventLog()
    await log.ensure_topics(
        [
            TopicSpec(name=name, partitions=2)
            for name in (TOPIC, f"{TOPIC}.dlq", f"{TOPIC}.late", f"{TOPIC}.retry.1")
        ]
    )
    return log


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def store_for(sinks: Sinks) -> InMemoryCheckpointStore:
    return InMemoryCheckpointStore({"ticks": sinks.ticks, "counts": sinks.counts})


def job_run(
    log: InMemoryEventLog,
    store: Any,
    clock: ManualClock,
    *,
    group: str = "g",
    retry_delays: Sequence[float] = (),
) -> JobRun:
    return JobRun(
        job=tick_job(TOPIC),
        group_id=group,
        log=log,
        store=store,
        codecs={TOPIC: TickCodec()},
        clock=clock,
        worker_id="test",
        batch_size=100,
        batch_timeout=0.02,
        retry=RetryPolicy(initial=0.001, maximum=0.002, attempts=2),
        retry_delays_s=retry_delays,
    )


async def publish(log: InMemoryEventLog, *ticks: Tick, raw: Sequence[bytes] = ()) -> None:
    codec = TickCodec()
    for tick in ticks:
        await log.publish(TOPIC, tick.key.encode(), await codec.encode(tick))
    for value in raw:
        await log.publish(TOPIC, b"a", value)
    await log.flush()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def read_all(log: InMemoryEventLog, topic: str) -> list[Record]:
    ends = await log.end_offsets(topic)
    reader = log.reader(group_id="reader", start={TopicPartition(topic, p): 0 for p in ends})
    records: list[Record] = []
    total = sum(ends.values())
    while len(records) < total:
        records += await reader.poll(1000, 0.05)
    await reader.close()
    return records


async def test_a_batch_commits_rows_window_state_and_offsets_together(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    store = store_for(sinks)
    await publish(log, *(Tick("a", at(i), i) for i in range(5)))

    stats = await asyncio.wait_for(run_job(job_run(log, store, clock), until_caught_up=True), 5)

    assert stats.records == 5
    assert len(sinks.ticks.rows) == 5
    assert sinks.count("a", T0) == 5
    state = await store.load_state("g", [0, 1])
    assert any("counts" in steps for steps in state.values())
    stored = await store.stored_offsets("g", [TopicPartition(TOPIC, p) for p in (0, 1)])
    assert sum(stored.values()) == 5


async def test_window_updates_held_back_are_made_durable_before_the_run_returns(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    await publish(log, *(Tick("a", at(i % 50), i) for i in range(150)))  # batches: 100, 50
    run = dataclasses.replace(
        job_run(log, store_for(sinks), clock), job=tick_job(TOPIC, every=timedelta(minutes=5))
    )

    stats = await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    # The clock stood still: the second batch's update was held back, then flushed.
    assert stats.records == 150
    assert sinks.count("a", T0) == 150


async def test_a_restarted_job_continues_its_open_windows_from_the_restored_state(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    store = store_for(sinks)
    await publish(log, *(Tick("a", at(i), i) for i in range(3)))
    await asyncio.wait_for(run_job(job_run(log, store, clock), until_caught_up=True), 5)
    await publish(log, *(Tick("a", at(10 + i), i) for i in range(4)))

    second = await asyncio.wait_for(run_job(job_run(log, store, clock), until_caught_up=True), 5)

    assert second.records == 4
    assert sinks.count("a", T0) == 7


async def test_undecodable_and_invalid_records_become_dead_letters_with_their_class(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    store = store_for(sinks)
    await publish(log, Tick("a", at(1), 1), Tick("a", at(2), -5), raw=[b"{not json"])

    stats = await asyncio.wait_for(run_job(job_run(log, store, clock), until_caught_up=True), 5)

    assert dict(stats.rejected) == {"negative_tick": 1, "malformed_payload": 1}
    dlq = await read_all(log, f"{TOPIC}.dlq")
    classes = sorted(dict(r.headers)["dlq.error.class"].decode() for r in dlq)
    assert classes == ["malformed_payload", "negative_tick"]
    assert len(await store.dead_letters.find_dead_letters(DeadLetterFilter())) == 2
    assert [t.value for t in sinks.ticks.rows.values()] == [1]
    assert sinks.count("a", T0) == 1


async def test_a_record_later_than_its_windows_close_goes_to_the_late_topic(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    store = store_for(sinks)
    # Same key, so the same partition: the second record is 5 minutes behind the first,
    # far past its window's end plus 10 s of grace.
    await publish(log, Tick("a", at(300), 1), Tick("a", at(5), 2))

    stats = await asyncio.wait_for(run_job(job_run(log, store, clock), until_caught_up=True), 5)

    late = await read_all(log, f"{TOPIC}.late")
    assert stats.late == 1
    assert len(late) == 1
    assert dict(late[0].headers)["late.step"] == b"counts"
    assert sinks.count("a", T0) == 0  # not counted in its closed window …
    assert len(sinks.ticks.rows) == 2  # … but stored as a tick like any other


async def test_the_last_window_of_a_quiet_partition_closes_once_it_has_been_idle(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    store = store_for(sinks)
    await publish(log, Tick("a", at(1), 1))
    stop = asyncio.Event()
    running = asyncio.create_task(run_job(job_run(log, store, clock), stop=stop))
    await asyncio.sleep(0.2)
    open_state = await store.load_state("g", [0, 1])

    clock.advance(timedelta(minutes=3))  # idle 30 s, then the watermark follows the clock
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(running, 5)

    closed_state = await store.load_state("g", [0, 1])
    assert any(steps.get("counts") for steps in open_state.values())
    assert not any(steps.get("counts") for steps in closed_state.values())
    assert sinks.count("a", T0) == 1


async def test_a_member_whose_partition_was_handled_further_is_fenced_and_writes_nothing(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    store = store_for(sinks)
    await publish(log, *(Tick("a", at(i), i) for i in range(5)))
    records = await read_all(log, TOPIC)
    parts = [TopicPartition(TOPIC, p) for p in (0, 1)]
    run = job_run(log, store, clock)

    def handler() -> JobHandler:
        return JobHandler(
            job=run.job, group_id="g", codecs=run.codecs, store=store, log_=log,
            clock=clock, worker_id="w",
        )  # fmt: skip

    current, zombie = handler(), handler()
    await current.resolve(parts)
    await zombie.resolve(parts)
    stale = await zombie.prepare(records)
    await current.apply(await current.prepare(records))

    report = await zombie.apply(stale)

    assert report.skipped == 5
    assert sinks.count("a", T0) == 5  # not 10


class OvertakenOnce:
    """A checkpoint store on which another member (`other`) commits `ahead` just before this
    member's first commit: that commit is then fenced for their partition."""

    def __init__(self, inner: InMemoryCheckpointStore, other: JobHandler) -> None:
        self.inner = inner
        self.other = other
        self.ahead: list[Record] = []
        self.overtaken = False

    async def commit(self, batch: Any) -> Any:
        if not self.overtaken:
            self.overtaken = True
            await self.other.apply(await self.other.prepare(self.ahead))
        return await self.inner.commit(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_batch_fenced_in_part_is_read_again_from_the_offsets_the_other_member_stored(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    # Found by the three-worker scaling benchmark: a batch read before a rebalance is fenced
    # at its commit for a partition another member has stored up to offset 4; the records
    # 4..9 of that batch were stored by nobody, and must be read again, not skipped.
    sinks = Sinks()
    inner = store_for(sinks)
    await publish(log, *(Tick("a", at(i), i) for i in range(10)))
    records = await read_all(log, TOPIC)
    run = job_run(log, inner, clock)
    other = JobHandler(
        job=run.job, group_id="g", codecs=run.codecs, store=inner, log_=log,
        clock=clock, worker_id="other",
    )  # fmt: skip
    await other.resolve([TopicPartition(TOPIC, p) for p in (0, 1)])
    store = OvertakenOnce(inner, other)
    store.ahead = records[:4]

    stats = await asyncio.wait_for(
        run_job(job_run(log, store, clock), until_caught_up=True),  # type: ignore[arg-type]
        5,
    )

    assert store.overtaken
    assert stats.skipped == 10
    assert sorted(t.value for t in sinks.ticks.rows.values()) == list(range(10))
    assert sinks.count("a", T0) == 10
    [tp] = {r.topic_partition for r in records}
    assert (await inner.stored_offsets("g", [tp]))[tp] == 10


async def test_a_row_the_store_refuses_for_good_dead_letters_its_record_and_the_rest_commit(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks(refuse=lambda tick: tick.value == 13)
    store = store_for(sinks)
    await publish(log, *(Tick("a", at(i), 10 + i) for i in range(5)))

    stats = await asyncio.wait_for(run_job(job_run(log, store, clock), until_caught_up=True), 5)

    assert sorted(t.value for t in sinks.ticks.rows.values()) == [10, 11, 12, 14]
    assert sum(stats.rejected.values()) == 1
    assert [d.offset for d in await store.dead_letters.find_dead_letters(DeadLetterFilter())] == [3]
    stored = await store.stored_offsets("g", [TopicPartition(TOPIC, p) for p in (0, 1)])
    assert sum(stored.values()) == 5


async def test_a_diverted_batch_is_counted_once_when_its_retry_level_forwards_it_back(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    store = FaultyCheckpoint(store_for(sinks), failures=2, only_with_rows=True)
    await publish(log, *(Tick("a", at(i), i) for i in range(4)))
    stop = asyncio.Event()
    run = job_run(log, store, clock, retry_delays=[0.0])

    running = asyncio.create_task(run_job(run, stop=stop))
    for _ in range(100):
        if sinks.count("a", T0) == 4:
            break
        await asyncio.sleep(0.05)
    stop.set()
    stats = await asyncio.wait_for(running, 5)

    assert sum(stats.sent_to_retry.values()) == 4
    assert sinks.count("a", T0) == 4  # diverted, restored, forwarded back: counted once
    assert len(sinks.ticks.rows) == 4


async def test_a_stale_prepared_batch_is_prepared_again_after_state_was_restored(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    sinks = Sinks()
    store = store_for(sinks)
    await publish(log, *(Tick("a", at(i), i) for i in range(3)))
    records = await read_all(log, TOPIC)
    run = job_run(log, store, clock)
    handler = JobHandler(
        job=run.job, group_id="g", codecs=run.codecs, store=store, log_=log, clock=clock,
        worker_id="w",
    )  # fmt: skip
    parts = [TopicPartition(TOPIC, p) for p in (0, 1)]
    await handler.resolve(parts)
    prepared = await handler.prepare(records)
    await handler.resolve(parts)  # a reassignment restores state: a new epoch

    await handler.apply(prepared)

    assert sinks.count("a", T0) == 3


async def test_an_assignment_is_logged_once_its_state_is_restored(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    # The moment a worker starts consuming (and `benchmarks/worker_lifecycle.py` times).
    store = store_for(Sinks())
    run = job_run(log, store, clock)
    handler = JobHandler(
        job=run.job, group_id="g", codecs=run.codecs, store=store, log_=log, clock=clock,
        worker_id="w",
    )  # fmt: skip

    with structlog.testing.capture_logs() as logs:
        await handler.resolve([TopicPartition(TOPIC, p) for p in (1, 0)])

    assigned = [entry for entry in logs if entry["event"] == "partitions assigned"]
    assert assigned == [
        {
            "event": "partitions assigned",
            "log_level": "info",
            "group": "g",
            "partitions": [f"{TOPIC}[0]", f"{TOPIC}[1]"],
        }
    ]
    assert handler.task.partitions == {0, 1}


async def test_until_caught_up_exits_on_what_the_consumer_knows_without_asking_for_lag(
    log: InMemoryEventLog, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Asking the broker for each partition's end is a round trip each: a consumer that
    # knows every partition is read to its end is not asked.
    asked: list[int] = []

    async def lag(self: InMemoryGroupConsumer) -> int:
        asked.append(1)
        return 0

    monkeypatch.setattr(InMemoryGroupConsumer, "lag", lag)
    store = store_for(Sinks())
    await publish(log, *(Tick("a", at(i), i) for i in range(5)))

    stats = await asyncio.wait_for(run_job(job_run(log, store, clock), until_caught_up=True), 5)

    assert stats.records == 5
    assert asked == []


class StartRecordingLog(InMemoryEventLog):
    """Notes, in order, each delivery asked of it and each poll of its group consumers."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def deliver(self, records: Sequence[Any], timeout: float = 30.0) -> list[Any]:
        self.calls.append(f"deliver {len(records)}")
        return await super().deliver(records, timeout)

    def consumer(self, **kwargs: Any) -> Any:
        consumer = super().consumer(**kwargs)
        poll = consumer.poll

        async def noted_poll(max_records: int, timeout: float) -> list[Record]:
            self.calls.append("poll")
            return await poll(max_records, timeout)

        consumer.poll = noted_poll  # type: ignore[method-assign]
        return consumer


async def test_a_job_starts_its_logs_producer_before_its_first_poll(clock: ManualClock) -> None:
    # A Kafka producer's first delivery waits ~0.5 s for its producer id: started with the
    # job, it has it before the first alert or dead letter is published after a batch.
    log = StartRecordingLog()
    await log.ensure_topics([TopicSpec(name=TOPIC, partitions=2)])
    await publish(log, Tick("a", at(0), 1))

    run = job_run(log, store_for(Sinks()), clock)

    await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    assert log.calls[0] == "deliver 0"
    assert "poll" in log.calls


class EventfulSink(ListSink):
    """A ListSink whose rows newly stored are also events (as alerts are)."""

    def write(self, rows: Sequence[Any], origins: Sequence[Record | None], undo: Any) -> Any:
        result = super().write(rows, origins, undo)
        return SinkResult(written=result.written, events=tuple(rows))


def eventful(sinks: Sinks) -> InMemoryCheckpointStore:
    sinks.ticks = EventfulSink(lambda t: (t.key, t.at))
    return store_for(sinks)


async def test_the_loop_goes_on_while_a_batchs_events_are_handed_on(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    await publish(log, *(Tick("a", at(i), i) for i in range(150)))  # batches of 100 and 50
    stats = WorkerStats()
    handed: list[int] = []

    async def on_events(events: Sequence[object]) -> None:
        # The first batch's events are handed on only once the next batch was made durable
        # and followed up: were the loop waiting for this call, it would wait in vain.
        while not handed and stats.batches < 2:
            await asyncio.sleep(0.01)
        handed.append(len(events))

    run = job_run(log, eventful(Sinks()), clock)

    await asyncio.wait_for(run_job(run, until_caught_up=True, stats=stats, on_events=on_events), 5)

    assert stats.records == 150
    assert sum(handed) == 150  # every event handed on before the run returned


async def test_a_relay_refused_for_good_stops_the_run(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    await publish(log, *(Tick("a", at(i), i) for i in range(5)))

    async def on_events(events: Sequence[object]) -> None:
        raise ConfigurationError("not authorized to write to the alerts topic")

    run = job_run(log, eventful(Sinks()), clock)

    with pytest.raises(ConfigurationError, match="not authorized"):
        await asyncio.wait_for(run_job(run, until_caught_up=True, on_events=on_events), 5)


async def test_a_relay_failing_transiently_is_retried_with_the_next_events(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    await publish(log, *(Tick("a", at(i), i) for i in range(150)))
    calls: list[int] = []

    async def on_events(events: Sequence[object]) -> None:
        calls.append(len(events))
        if len(calls) == 1:
            raise BrokerUnavailable("the broker is away")

    run = job_run(log, eventful(Sinks()), clock)

    stats = await asyncio.wait_for(run_job(run, until_caught_up=True, on_events=on_events), 5)

    assert stats.records == 150
    assert len(calls) == 2
    assert sum(calls) == 150


async def test_a_relay_failing_with_a_bug_stops_the_run_even_when_later_ones_succeed(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    await publish(log, *(Tick("a", at(i), i) for i in range(150)))  # batches of 100 and 50
    calls: list[int] = []

    async def on_events(events: Sequence[object]) -> None:
        calls.append(len(events))
        if len(calls) == 1:
            raise RuntimeError("a bug in the relay")

    run = job_run(log, eventful(Sinks()), clock)

    with pytest.raises(RuntimeError, match="a bug in the relay"):
        await asyncio.wait_for(run_job(run, until_caught_up=True, on_events=on_events), 5)
