"""The consumer loop: batches, commits, stopping, catching up, transient failures."""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Sequence

from pipeline.adapters.memory import InMemoryEventLog
from pipeline.application.errors import StoreUnavailable
from pipeline.application.ports import Record, TopicPartition, TopicSpec
from pipeline.application.runtime.consumer_loop import ConsumerWorker
from pipeline.application.runtime.report import BatchReport
from pipeline.application.runtime.retry_policy import RetryPolicy
from pipeline.application.runtime.stats import BatchTimings, WorkerStats

TOPIC = "events"


class RecordingHandler:
    """Makes batches 'durable' in a list; can fail transiently a number of times first."""

    group_id = "g"

    def __init__(self, failures: int = 0) -> None:
        self.handled: list[int] = []
        self.failures = failures
        self.calls = 0

    async def prepare(self, records: Sequence[Record]) -> list[Record]:
        return list(records)

    async def apply(self, records: list[Record]) -> BatchReport:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("database is down")
        self.handled.extend(r.offset for r in records)
        next_offsets: dict[TopicPartition, int] = {}
        for r in records:
            next_offsets[r.topic_partition] = r.offset + 1
        return BatchReport(
            records=len(records), written={"rows": len(records)}, next_offsets=next_offsets
        )

    async def idle(self, *, flush: bool = False) -> list[Record] | None:
        return None


async def log_with(count: int) -> InMemoryEventLog:
    log = InMemoryEventLog()
    await log.ensure_topics([TopicSpec(name=TOPIC, partitions=1)])
    for i in range(count):
        await log.publish(TOPIC, b"k", f"v{i}".encode())
    return log


def worker(
    log: InMemoryEventLog, handler: RecordingHandler, **kw: object
) -> ConsumerWorker[list[Record]]:
    return ConsumerWorker(
        consumer=log.consumer(group_id="g", topics=[TOPIC]),
        handler=handler,
        batch_size=10,
        batch_timeout=0.05,
        **kw,  # type: ignore[arg-type]
    )


async def test_until_caught_up_handles_every_record_once_then_returns() -> None:
    log = await log_with(25)
    handler = RecordingHandler()

    stats = await asyncio.wait_for(worker(log, handler, until_caught_up=True).run(), 5)

    assert handler.handled == list(range(25))
    assert stats.records == 25
    assert stats.batches == 3


async def test_until_caught_up_returns_after_a_full_last_batch_without_another_poll() -> None:
    # 20 records, batches of 10: the second batch reads every partition to its end, which the
    # consumer knows without asking; polling once more would only wait `batch_timeout`.
    log = await log_with(20)
    handler = RecordingHandler()
    consumer = log.consumer(group_id="g", topics=[TOPIC])
    polls: list[int] = []
    poll = consumer.poll

    async def counted_poll(max_records: int, timeout: float) -> list[Record]:
        records = await poll(max_records, timeout)
        polls.append(len(records))
        return records

    consumer.poll = counted_poll  # type: ignore[method-assign]
    looping = ConsumerWorker(
        consumer=consumer, handler=handler, batch_size=10, batch_timeout=5.0, until_caught_up=True
    )

    stats = await asyncio.wait_for(looping.run(), 4)

    assert handler.handled == list(range(20))
    assert stats.lag == 0
    assert polls == [10, 10]


async def test_batches_are_committed_for_the_group() -> None:
    log = await log_with(5)
    await worker(log, RecordingHandler(), until_caught_up=True).run()
    handler = RecordingHandler()

    await asyncio.wait_for(worker(log, handler, until_caught_up=True).run(), 1)

    assert handler.handled == []


async def test_transient_failure_is_retried_until_the_batch_is_durable() -> None:
    log = await log_with(3)
    handler = RecordingHandler(failures=2)
    retry = RetryPolicy(initial=0.01, maximum=0.02)

    stats = await asyncio.wait_for(worker(log, handler, until_caught_up=True, retry=retry).run(), 5)

    assert handler.handled == [0, 1, 2]
    assert stats.retries == 2


async def test_stop_during_retry_leaves_the_batch_uncommitted() -> None:
    log = await log_with(3)
    stop = asyncio.Event()
    handler = RecordingHandler(failures=1_000)
    running = asyncio.create_task(
        worker(log, handler, stop=stop, retry=RetryPolicy(initial=5, maximum=5)).run()
    )
    while handler.calls == 0:
        await asyncio.sleep(0.01)

    stop.set()
    stats = await asyncio.wait_for(running, 2)  # a stop, not a failure

    assert stats.records == 0
    again = RecordingHandler()
    await asyncio.wait_for(worker(log, again, until_caught_up=True).run(), 5)
    assert again.handled == [0, 1, 2]


async def test_stop_finishes_the_batch_in_hand_and_returns() -> None:
    log = await log_with(10)
    stop = asyncio.Event()
    handler = RecordingHandler()
    running = asyncio.create_task(worker(log, handler, stop=stop).run())
    while not handler.handled:
        await asyncio.sleep(0.01)

    stop.set()
    stats = await asyncio.wait_for(running, 2)

    assert stats.records == len(handler.handled) == 10


class OverlapHandler(RecordingHandler):
    """Records whether a batch was prepared while another was being applied, and whether two
    batches were ever applied at once."""

    def __init__(self) -> None:
        super().__init__()
        self.applying = 0
        self.prepared_during_apply = False
        self.concurrent_applies = False

    async def prepare(self, records: Sequence[Record]) -> list[Record]:
        if self.applying:
            self.prepared_during_apply = True
        return list(records)

    async def apply(self, records: list[Record]) -> BatchReport:
        self.applying += 1
        self.concurrent_applies |= self.applying > 1
        try:
            await asyncio.sleep(0.02)  # the transaction is in the database
            return await super().apply(records)
        finally:
            self.applying -= 1


async def test_next_batch_is_prepared_while_the_previous_one_is_applied_in_order() -> None:
    log = await log_with(50)
    handler = OverlapHandler()

    await asyncio.wait_for(worker(log, handler, until_caught_up=True).run(), 5)

    assert handler.prepared_during_apply
    assert not handler.concurrent_applies
    assert handler.handled == list(range(50))


async def test_transient_failure_resolving_an_assignment_is_retried() -> None:
    log = await log_with(5)
    failures = [StoreUnavailable("database is down while the partitions are assigned")]

    async def resolve(partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if failures:
            raise failures.pop()
        return {}

    handler = RecordingHandler()
    consumer = log.consumer(group_id="g", topics=[TOPIC], resolve_offsets=resolve)
    loop = ConsumerWorker(
        consumer=consumer,
        handler=handler,
        batch_size=10,
        batch_timeout=0.05,
        until_caught_up=True,
        retry=RetryPolicy(initial=0.01, maximum=0.02),
    )

    stats = await asyncio.wait_for(loop.run(), 5)

    assert handler.handled == [0, 1, 2, 3, 4]
    assert stats.retries == 1


class StallingPrepareHandler(RecordingHandler):
    """Applies the first batch slowly; preparing the second fails transiently for ever."""

    def __init__(self) -> None:
        super().__init__()
        self.prepares = 0
        self.second_prepare_started = asyncio.Event()

    async def prepare(self, records: Sequence[Record]) -> list[Record]:
        self.prepares += 1
        if self.prepares > 1:
            self.second_prepare_started.set()
            raise StoreUnavailable("registry unreachable")
        return list(records)

    async def apply(self, records: list[Record]) -> BatchReport:
        await asyncio.sleep(0.1)
        return await super().apply(records)


async def test_stop_while_the_next_batch_fails_still_commits_the_batch_in_flight() -> None:
    log = await log_with(15)
    stop = asyncio.Event()
    handler = StallingPrepareHandler()
    running = asyncio.create_task(
        worker(log, handler, stop=stop, retry=RetryPolicy(initial=5, maximum=5)).run()
    )
    await asyncio.wait_for(handler.second_prepare_started.wait(), 2)

    stop.set()
    stats = await asyncio.wait_for(running, 2)  # a stop, not a failure

    assert stats.records == 10
    assert handler.handled == list(range(10))
    again = RecordingHandler()
    await asyncio.wait_for(worker(log, again, until_caught_up=True).run(), 5)
    assert again.handled == list(range(10, 15))


class StartsHandler(RecordingHandler):
    """Signals each batch's apply as it starts (counted from 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = [asyncio.Event() for _ in range(10)]

    async def apply(self, records: list[Record]) -> BatchReport:
        self.started[self.calls].set()
        return await super().apply(records)


async def test_the_next_transaction_starts_before_the_batch_before_is_followed_up() -> None:
    log = await log_with(20)
    handler = StartsHandler()
    followed_up: list[int] = []

    async def after_batch(report: BatchReport) -> None:
        # The group commit and the events of batch 1 run while batch 2 is made durable:
        # they do not hold its transaction back (without that, this waits in vain).
        if not followed_up:
            await asyncio.wait_for(handler.started[1].wait(), 5)
        followed_up.append(report.records)

    stats = await asyncio.wait_for(
        worker(log, handler, until_caught_up=True, after_batch=after_batch).run(), 10
    )

    assert followed_up == [10, 10]
    assert handler.handled == list(range(20))
    assert stats.records == 20


class ReturnsHandler(RecordingHandler):
    """Notes when each batch's apply returned (wall clock), and signals it."""

    def __init__(self) -> None:
        super().__init__()
        self.returned_at: list[float] = []
        self.returned = [asyncio.Event() for _ in range(10)]

    async def apply(self, records: list[Record]) -> BatchReport:
        report = await super().apply(records)
        self.returned_at.append(time.time())
        self.returned[self.calls - 1].set()
        return report


async def test_a_batchs_latency_ends_when_it_was_made_durable_not_when_followed_up() -> None:
    log = InMemoryEventLog()
    await log.ensure_topics([TopicSpec(name=TOPIC, partitions=1)])
    stamp_ms = int(time.time() * 1000)
    for i in range(20):
        await log.publish(TOPIC, b"k", f"v{i}".encode(), timestamp_ms=stamp_ms)
    handler = ReturnsHandler()
    followed_at: list[float] = []

    async def after_batch(report: BatchReport) -> None:
        if not followed_at:
            # Batch 1's follow-up lasts until well after batch 2 is durable.
            await asyncio.wait_for(handler.returned[1].wait(), 5)
            await asyncio.sleep(0.3)
        followed_at.append(time.time())

    stats = WorkerStats(latencies_ms=array("d"), timings=BatchTimings())

    await asyncio.wait_for(
        worker(log, handler, until_caught_up=True, after_batch=after_batch, stats=stats).run(), 10
    )

    assert stats.latencies_ms is not None
    assert stats.timings is not None
    assert list(stats.timings.sizes) == [10, 10]
    durable_ms = [latency + stamp_ms for latency in stats.latencies_ms]
    assert max(durable_ms[10:]) < followed_at[1] * 1000 - 200
    assert min(durable_ms[10:]) >= handler.returned_at[1] * 1000


class SlowApplyHandler(RecordingHandler):
    """Notes when each batch's prepare began; takes `apply_s` to make a batch durable."""

    def __init__(self, apply_s: float) -> None:
        super().__init__()
        self.apply_s = apply_s
        self.prepared_at: list[float] = []

    async def prepare(self, records: Sequence[Record]) -> list[Record]:
        self.prepared_at.append(time.time())
        return list(records)

    async def apply(self, records: list[Record]) -> BatchReport:
        await asyncio.sleep(self.apply_s)
        return await super().apply(records)


async def test_a_records_latency_splits_at_the_poll_that_returned_it() -> None:
    log = InMemoryEventLog()
    await log.ensure_topics([TopicSpec(name=TOPIC, partitions=1)])
    stamp_ms = int(time.time() * 1000) - 1_000  # produced a second before the worker starts
    for i in range(20):
        await log.publish(TOPIC, b"k", f"v{i}".encode(), timestamp_ms=stamp_ms)
    handler = SlowApplyHandler(apply_s=0.2)
    stats = WorkerStats(latencies_ms=array("d"), polled_ms=array("d"))

    await asyncio.wait_for(worker(log, handler, until_caught_up=True, stats=stats).run(), 10)

    assert stats.latencies_ms is not None
    assert stats.polled_ms is not None
    assert len(stats.polled_ms) == len(stats.latencies_ms) == 20
    for n, (latency, polled) in enumerate(zip(stats.latencies_ms, stats.polled_ms, strict=True)):
        # Waiting in the log (at least the second before the worker started), then the
        # worker: at least the apply's 0.2 s.
        assert 1_000 <= polled <= handler.prepared_at[n // 10] * 1000 - stamp_ms
        assert latency - polled >= 200
