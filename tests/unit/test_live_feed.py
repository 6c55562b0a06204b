"""The live feed: one reader for all subscribers, started by the first and stopped when idle,
that survives broker failures and waits for its topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta

import pytest
import structlog

from pipeline.adapters.avro import alert_codec, reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.application.errors import BrokerUnavailable
from pipeline.application.live import LiveFilter, LiveReading, LiveStats, Subscription
from pipeline.application.live_feed import LiveFeed
from pipeline.application.ports import EventConsumer, Record, TopicPartition, TopicSpec
from pipeline.domain.sensors import Reading

READINGS, ALERTS = "readings", "alerts"


class FlakyEventLog(InMemoryEventLog):
    """The in-memory log whose end offsets and polls fail a given number of times first."""

    def __init__(self, *, end_offset_failures: int = 0, poll_failures: int = 0) -> None:
        super().__init__()
        self.end_offset_failures = end_offset_failures
        self.poll_failures = poll_failures
        self.readers: list[FlakyReader] = []

    async def end_offsets(self, topic: str) -> dict[int, int]:
        if self.end_offset_failures:
            self.end_offset_failures -= 1
            raise BrokerUnavailable("broker down")
        return await super().end_offsets(topic)

    def reader(self, *, group_id: str, start: Mapping[TopicPartition, int]) -> EventConsumer:
        reader = FlakyReader(self, super().reader(group_id=group_id, start=start))
        self.readers.append(reader)
        return reader


class FlakyReader:
    def __init__(self, log: FlakyEventLog, inner: EventConsumer) -> None:
        self._log = log
        self._inner = inner
        self.closed = False

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        if self._log.poll_failures:
            self._log.poll_failures -= 1
            raise BrokerUnavailable("fetch failed")
        return await self._inner.poll(max_records, timeout)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self._inner.commit(offsets)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._inner.assignment()

    async def lag(self) -> int:
        return await self._inner.lag()

    async def pause(self) -> None:
        await self._inner.pause()

    async def resume(self) -> None:
        await self._inner.resume()

    async def close(self) -> None:
        self.closed = True
        await self._inner.close()


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    structlog.reset_defaults()


@pytest.fixture
def clock(clock: ManualClock) -> ManualClock:
    return clock


# One registry per test run of the module is enough: producer and feed must share it.
REGISTRY = InMemorySchemaRegistry()


def make_feed(log: InMemoryEventLog, clock: ManualClock, **options: float) -> LiveFeed:
    registry = REGISTRY
    return LiveFeed(
        log=log,
        store=InMemoryCheckpointStore({}),
        clock=clock,
        reading_codec=reading_codec(registry, READINGS),
        alert_codec=alert_codec(registry, ALERTS),
        readings_topic=READINGS,
        alerts_topic=ALERTS,
        lag_group="test-sensors",
        reader_group_prefix="test",
        poll_timeout=0.02,
        max_backoff=0.05,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def topics_log() -> FlakyEventLog:
    log = FlakyEventLog()
    await log.ensure_topics(
        [TopicSpec(name=READINGS, partitions=2), TopicSpec(name=ALERTS, partitions=1)]
    )
    return log


@pytest.fixture
async def feed(topics_log: FlakyEventLog, clock: ManualClock) -> AsyncIterator[LiveFeed]:
    feed = make_feed(topics_log, clock)
    yield feed
    await feed.aclose()


async def produce(feed: LiveFeed, log: InMemoryEventLog, clock: ManualClock, sensor: str) -> None:
    codec = reading_codec(REGISTRY, READINGS)
    reading = Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=20.0,
        unit="celsius",
        timestamp=clock.now() - timedelta(seconds=1),
        location="lab",
    )
    await log.publish(READINGS, sensor.encode(), await codec.encode(reading))


async def next_reading(subscription: Subscription, timeout: float = 3.0) -> LiveReading:
    async def wait() -> LiveReading:
        while True:
            batch = await subscription.next_batch(100)
            assert batch is not None, "the subscription closed"
            for event in batch:
                if isinstance(event, LiveReading):
                    return event

    return await asyncio.wait_for(wait(), timeout)


async def next_stats(subscription: Subscription, timeout: float = 3.0) -> LiveStats:
    async def wait() -> LiveStats:
        while True:
            batch = await subscription.next_batch(100)
            assert batch is not None, "the subscription closed"
            for event in batch:
                if isinstance(event, LiveStats):
                    return event

    return await asyncio.wait_for(wait(), timeout)


async def test_the_first_subscriber_starts_one_reader_at_the_end_of_the_topics(
    feed: LiveFeed, topics_log: FlakyEventLog, clock: ManualClock
) -> None:
    await produce(feed, topics_log, clock, "before")  # history: not shown
    sub = feed.subscribe(LiveFilter(), queue_size=10)
    feed.subscribe(LiveFilter(), queue_size=10)
    await asyncio.wait_for(feed.reading.wait(), 3)

    await produce(feed, topics_log, clock, "after")

    assert (await next_reading(sub)).reading.sensor_id == "after"
    assert len(topics_log.readers) == 1


async def test_it_survives_broker_failures_and_goes_on(
    topics_log: FlakyEventLog, clock: ManualClock
) -> None:
    topics_log.end_offset_failures = 2
    topics_log.poll_failures = 2
    feed = make_feed(topics_log, clock)
    try:
        sub = feed.subscribe(LiveFilter(), queue_size=10)
        # Failing polls make it reopen the reader; wait until one polls successfully.
        while topics_log.poll_failures or not feed.reading.is_set():
            await asyncio.sleep(0.01)
        await asyncio.wait_for(feed.reading.wait(), 3)

        await produce(feed, topics_log, clock, "after-outage")

        assert (await next_reading(sub)).reading.sensor_id == "after-outage"
        assert feed.running
    finally:
        await feed.aclose()
    assert len(topics_log.readers) >= 2  # a failed reader is replaced


async def test_it_waits_for_its_topics(clock: ManualClock) -> None:
    log = FlakyEventLog()
    feed = make_feed(log, clock)
    try:
        sub = feed.subscribe(LiveFilter(), queue_size=10)
        await asyncio.sleep(0.1)
        assert not feed.reading.is_set()
        await log.ensure_topics(
            [TopicSpec(name=READINGS, partitions=1), TopicSpec(name=ALERTS, partitions=1)]
        )
        await asyncio.wait_for(feed.reading.wait(), 3)

        await produce(feed, log, clock, "late")

        assert (await next_reading(sub)).reading.sensor_id == "late"
    finally:
        await feed.aclose()


async def test_it_stops_when_idle_and_restarts_for_the_next_subscriber(
    topics_log: FlakyEventLog, clock: ManualClock
) -> None:
    feed = make_feed(topics_log, clock, idle_timeout=0.05)
    try:
        first = feed.subscribe(LiveFilter(), queue_size=10)
        await asyncio.wait_for(feed.reading.wait(), 3)
        feed.unsubscribe(first)
        while feed.running:
            await asyncio.sleep(0.01)
        assert topics_log.readers[0].closed

        second = feed.subscribe(LiveFilter(), queue_size=10)
        await asyncio.wait_for(feed.reading.wait(), 3)
        await produce(feed, topics_log, clock, "again")

        assert (await next_reading(second)).reading.sensor_id == "again"
        assert len(topics_log.readers) == 2
    finally:
        await feed.aclose()


async def test_closing_ends_subscriptions_stops_reading_and_closes_the_reader(
    feed: LiveFeed, topics_log: FlakyEventLog
) -> None:
    sub = feed.subscribe(LiveFilter(), queue_size=10)
    await asyncio.wait_for(feed.reading.wait(), 3)

    await feed.aclose()

    assert await sub.next_batch(1) is None
    assert not feed.running
    assert topics_log.readers[0].closed
    late = feed.subscribe(LiveFilter(), queue_size=10)
    assert await late.next_batch(1) is None  # a closed feed ends new subscriptions at once
    assert not feed.running


async def test_stats_count_readings_per_second_and_clients(
    topics_log: FlakyEventLog, clock: ManualClock
) -> None:
    feed = make_feed(topics_log, clock, stats_interval=0.3, lag_interval=0.3)
    try:
        sub = feed.subscribe(LiveFilter(alerts_only=True), queue_size=100)
        await asyncio.wait_for(feed.reading.wait(), 3)
        await next_stats(sub)
        for i in range(6):
            await produce(feed, topics_log, clock, f"s{i}")

        stats = await next_stats(sub)

        assert stats.readings_per_second > 0
        assert stats.clients == 1
        assert stats.time == clock.now()
        while stats.lag != 6:  # the lag is refreshed on its own interval
            stats = await next_stats(sub)
        assert stats.lag == 6  # nothing is durable for the lag group
    finally:
        await feed.aclose()


class HangingStore(InMemorySensorStore):
    """A database that stopped answering: reading stored offsets never returns."""

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_database_that_hangs_does_not_slow_the_readings_down(
    topics_log: FlakyEventLog, clock: ManualClock
) -> None:
    # The lag is refreshed every second and its query never answers: readings produced
    # meanwhile must still arrive at once, not in bursts once per lag attempt.
    feed = make_feed(topics_log, clock, lag_interval=1.0, stats_interval=0.05)
    feed._store = HangingStore()
    produced: dict[str, float] = {}
    delays: list[float] = []
    try:
        subscription = feed.subscribe(LiveFilter(), 1000)
        await asyncio.wait_for(feed.reading.wait(), 3)

        async def producer() -> None:
            for index in range(30):
                sensor = f"temp-{index:04d}"
                produced[sensor] = time.monotonic()
                await produce(feed, topics_log, clock, sensor)
                await asyncio.sleep(0.05)

        task = asyncio.create_task(producer())
        for _ in range(30):
            event = await next_reading(subscription, timeout=3.0)
            delays.append(time.monotonic() - produced[event.reading.sensor_id])
        await task
        stats = await next_stats(subscription)
    finally:
        await feed.aclose()

    assert max(delays) < 0.5, f"slowest reading took {max(delays):.2f} s"
    assert stats.lag is None  # unknown while the database does not answer
