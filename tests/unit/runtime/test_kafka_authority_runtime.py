"""The generic runtime running a job whose sinks are topics, under Kafka authority, on the
in-memory log: outputs, changelog entries, dead letters and offsets in one transaction per
batch; state restored from the changelog on assignment; a batch the group refused
(`Fenced`) rewinds the consumer to the committed offsets; a zombie (`ProducerFenced`) stops."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry
from pipeline.application.errors import ConfigurationError, Fenced, ProducerFenced
from pipeline.application.kafka_authority import (
    TopicSink,
    TransactionalCheckpoint,
    sink_topics,
)
from pipeline.application.ports import EventConsumer, Record, TopicPartition, TopicSpec
from pipeline.application.ports.checkpoint import CheckpointBatch, Committed
from pipeline.application.runtime.retry_policy import RetryPolicy
from pipeline.application.runtime.runner import JobRun, run_job
from pipeline.streams import Count, Job, Sink, Tumbling, Windowed
from tests.unit.runtime.jobs import Tick, TickCodec, TickRefused

SOURCE, TICKS, COUNTS = "ticks", "ticks-out", "tick-counts"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def topic_job() -> Job:
    """Ticks → themselves (topic `ticks-out`) and per-key one-minute counts, one final
    result per window (topic `tick-counts`)."""
    job = Job("ticks-to-topics", idle_timeout=timedelta(seconds=30))

    def check(tick: Tick) -> None:
        if tick.value < 0:
            raise TickRefused(f"tick {tick.value} is negative")

    ticks = job.source(SOURCE, Tick, key=lambda t: t.key, event_time=lambda t: t.at)
    valid = ticks.validate(check, rejects=(TickRefused,))
    valid.to(Sink("ticks", Tick, topic=TICKS))
    (
        valid.window(Tumbling(size=timedelta(minutes=1), grace=timedelta(0)), step="counts")
        .aggregate(Count())
        .final()
        .to(Sink("counts", Windowed, topic=COUNTS))
    )
    return job


async def encode_tick(tick: Tick) -> tuple[bytes | None, bytes | None]:
    return tick.key.encode(), str(tick.value).encode()


async def encode_count(row: Windowed[str, int]) -> tuple[bytes | None, bytes | None]:
    value = {"start": row.window.start_time.isoformat(), "count": row.value}
    return row.key.encode(), json.dumps(value).encode()


SINKS = {"ticks": TopicSink(TICKS, encode_tick), "counts": TopicSink(COUNTS, encode_count)}


@pytest.fixture
async def log() -> InMemoryEventLog:
    log = InMemoryEventLog()
    await log.ensure_topics(
        [TopicSpec(name=name, partitions=2) for name in (SOURCE, f"{SOURCE}.dlq", TICKS, COUNTS)]
    )
    return log


def job_run(log: Any, *, member: str = "worker-1", batch_size: int = 100) -> JobRun:
    return JobRun(
        job=topic_job(),
        group_id="g",
        log=log,
        store=InMemoryCheckpointStore({}),  # unused under Kafka authority
        codecs={SOURCE: TickCodec()},
        clock=ManualClock(T0 + timedelta(hours=1)),
        worker_id="test",
        batch_size=batch_size,
        batch_timeout=0.02,
        retry=RetryPolicy(initial=0.001, maximum=0.002, attempts=2),
        retry_delays_s=(5.0,),
        topic_sinks=SINKS,
        member_id=member,
    )


async def publish(log: InMemoryEventLog, ticks: Sequence[Tick]) -> None:
    codec = TickCodec()
    for tick in ticks:
        await log.publish(SOURCE, tick.key.encode(), await codec.encode(tick))
    await log.flush()


def ticks_at(keys: Sequence[str], minutes: range, per_minute: int, first: int = 0) -> list[Tick]:
    """`per_minute` ticks per key in each minute, in time order; values count up from
    `first`."""
    times = [
        T0 + timedelta(minutes=minute, seconds=n * 60 // per_minute)
        for minute in minutes
        for n in range(per_minute)
    ]
    pairs = [(key, at) for at in times for key in keys]
    return [Tick(key, at, first + i) for i, (key, at) in enumerate(pairs)]


async def topic_values(log: InMemoryEventLog, topic: str) -> list[Record]:
    ends = await log.end_offsets(topic)
    reader = log.reader(group_id="check", start={TopicPartition(topic, p): 0 for p in ends})
    records: list[Record] = []
    while len(records) < sum(ends.values()):
        records += await reader.poll(1000, 0.01)
    await reader.close()
    return records


def counts_of(records: Sequence[Record]) -> Counter[tuple[str, str, int]]:
    """(key, window start, count) of every count record."""
    found: Counter[tuple[str, str, int]] = Counter()
    for r in records:
        value = json.loads(r.value or b"")
        found[((r.key or b"").decode(), value["start"], value["count"])] += 1
    return found


def expected_counts(ticks: Sequence[Tick], closed_before: datetime) -> Counter[Any]:
    per: Counter[tuple[str, str]] = Counter()
    for t in ticks:
        start = t.at.replace(second=0, microsecond=0)
        if start + timedelta(minutes=1) <= closed_before:
            per[(t.key, start.isoformat())] += 1
    return Counter({(key, start, n): 1 for (key, start), n in per.items()})


async def test_a_job_whose_sinks_are_topics_writes_them_and_resumes_with_its_state_restored(
    log: InMemoryEventLog,
) -> None:
    first = ticks_at(["a", "b", "c"], range(3), per_minute=4)
    second = ticks_at(["a", "b", "c"], range(2, 5), per_minute=4, first=len(first))
    await publish(log, [*first, Tick("a", T0, -1)])
    await asyncio.wait_for(run_job(job_run(log), until_caught_up=True), 5)
    await publish(log, second)

    await asyncio.wait_for(run_job(job_run(log), until_caught_up=True), 5)

    outputs = await topic_values(log, TICKS)
    assert sorted(int(r.value or b"") for r in outputs) == list(range(len(first) + len(second)))
    # Minute 2 was counted across the restart: its count came back from the changelog.
    # The last minute stays open (its end is past every partition's watermark).
    last = T0 + timedelta(minutes=4)
    assert counts_of(await topic_values(log, COUNTS)) == expected_counts(first + second, last)
    letters = await topic_values(log, f"{SOURCE}.dlq")
    assert [r.value for r in letters] == [await TickCodec().encode(Tick("a", T0, -1))]
    assert ("dlq.error.class", b"negative_tick") in letters[0].headers


class FencingLog:
    """The in-memory log whose transactional checkpoints refuse the commits listed in
    `fence_at` (counted from 1 across checkpoints) with `Fenced`, writing nothing, as
    Kafka's group coordinator refuses offsets sent with a generation it left."""

    def __init__(self, log: InMemoryEventLog, fence_at: set[int]) -> None:
        self._log = log
        self.fence_at = fence_at
        self.commits = 0
        self.fenced = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def transactional_checkpoint(
        self,
        consumer: EventConsumer,
        *,
        member_id: str,
        sinks: Mapping[str, TopicSink],
        steps: Sequence[str],
    ) -> TransactionalCheckpoint:
        inner = self._log.transactional_checkpoint(
            consumer, member_id=member_id, sinks=sinks, steps=steps
        )
        outer = self

        class Fencing:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            async def commit(self, batch: CheckpointBatch) -> Committed:
                outer.commits += 1
                if outer.commits in outer.fence_at:
                    outer.fenced += 1
                    raise Fenced("the consumer group moved on: ILLEGAL_GENERATION")
                return await inner.commit(batch)

        return Fencing()  # type: ignore[return-value]


async def test_a_fenced_batch_is_read_again_from_the_committed_offsets_with_the_state_restored(
    log: InMemoryEventLog,
) -> None:
    ticks = ticks_at(["a", "b", "c", "d"], range(6), per_minute=5)
    await publish(log, ticks)
    # Small batches: while one commits, the next is already prepared on the state it left.
    fencing = FencingLog(log, fence_at={2, 5, 6, 11})

    stats = await asyncio.wait_for(run_job(job_run(fencing, batch_size=7), until_caught_up=True), 5)

    assert fencing.fenced == 4
    assert stats.skipped > 0
    outputs = await topic_values(log, TICKS)
    assert Counter(int(r.value or b"") for r in outputs) == Counter(range(len(ticks)))
    last = T0 + timedelta(minutes=5)
    assert counts_of(await topic_values(log, COUNTS)) == expected_counts(ticks, last)


async def test_a_zombie_whose_member_id_a_newer_instance_took_stops_with_producer_fenced(
    log: InMemoryEventLog,
) -> None:
    await publish(log, ticks_at(["a", "b", "c", "d"], range(2), per_minute=2))
    zombie_stop = asyncio.Event()
    zombie = asyncio.create_task(run_job(job_run(log), stop=zombie_stop))
    while not await topic_values(log, TICKS):
        await asyncio.sleep(0.01)

    newer_stop = asyncio.Event()
    newer = asyncio.create_task(run_job(job_run(log), stop=newer_stop))
    await publish(log, ticks_at(["a", "b", "c", "d"], range(2, 4), per_minute=2, first=16))

    with pytest.raises(ProducerFenced):
        await asyncio.wait_for(zombie, 5)
    newer_stop.set()
    await asyncio.wait_for(newer, 5)


async def test_a_row_that_cannot_be_encoded_stops_the_job_with_nothing_written(
    log: InMemoryEventLog,
) -> None:
    async def refuse_seven(tick: Tick) -> tuple[bytes | None, bytes | None]:
        if tick.value == 7:
            raise ValueError("tick 7 has no encoding")
        return await encode_tick(tick)

    await publish(log, ticks_at(["a", "b"], range(1), per_minute=5))
    run = dataclasses.replace(
        job_run(log), topic_sinks={**SINKS, "ticks": TopicSink(TICKS, refuse_seven)}
    )

    # Not bisected as under database authority: rows written by halves of the batch would be
    # written again with the rest of it.
    with pytest.raises(ValueError, match="tick 7"):
        await asyncio.wait_for(run_job(run, until_caught_up=True), 5)
    assert await topic_values(log, TICKS) == []
    assert await log.end_offsets(f"{SOURCE}.dlq") == {0: 0, 1: 0}


def test_a_job_writing_to_topics_and_to_tables_is_refused() -> None:
    job = topic_job()
    job.source("other", Tick, key=lambda t: t.key, event_time=lambda t: t.at).to(
        Sink("table", Tick)
    )

    with pytest.raises(ConfigurationError, match="table"):
        sink_topics(job)


def test_the_authority_of_a_job_follows_its_sinks() -> None:
    assert sink_topics(topic_job()) == {"ticks": TICKS, "counts": COUNTS}
    job = Job("tables")
    job.source(SOURCE, Tick, key=lambda t: t.key, event_time=lambda t: t.at).to(Sink("table", Tick))
    assert sink_topics(job) is None


async def test_lag_is_sampled_from_the_offsets_the_transactions_committed(
    log: InMemoryEventLog,
) -> None:
    telemetry = PrometheusTelemetry()
    run = dataclasses.replace(job_run(log), telemetry=telemetry, sample_interval_s=0.02)
    await publish(log, ticks_at(["a", "b", "c"], range(2), per_minute=4))
    ends = await log.end_offsets(SOURCE)
    stop = asyncio.Event()

    def lags() -> dict[int, float | None]:
        return {
            p: telemetry.registry.get_sample_value(
                "pipeline_consumer_lag_records",
                {"pipeline_job": "ticks-to-topics", "topic": SOURCE, "partition": str(p)},
            )
            for p in ends
        }

    running = asyncio.create_task(run_job(run, stop=stop))
    try:
        for _ in range(250):
            if lags() == dict.fromkeys(ends, 0.0):
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)

    # Sampled for every partition (not absent), and from the group's committed offsets:
    # the checkpoint's, not the unused store's (which would report the whole topic).
    assert lags() == dict.fromkeys(ends, 0.0)


class AskingLog(InMemoryEventLog):
    """The in-memory log, noting whether each group member asked to read interleaved."""

    def __init__(self) -> None:
        super().__init__()
        self.interleaved: list[bool] = []

    def consumer(self, **kwargs: Any) -> EventConsumer:
        self.interleaved.append(kwargs.get("interleaved", False))
        return super().consumer(**kwargs)


async def test_a_job_writing_topics_reads_its_partitions_interleaved() -> None:
    # Its outputs (re-keyed topics) keep close to event-time order when it drains a backlog.
    log = AskingLog()
    await log.ensure_topics(
        [TopicSpec(name=name, partitions=2) for name in (SOURCE, f"{SOURCE}.dlq", TICKS, COUNTS)]
    )
    await publish(log, ticks_at(["a", "b"], range(2), per_minute=2))

    await asyncio.wait_for(run_job(job_run(log), until_caught_up=True), 5)

    assert log.interleaved[0] is True
