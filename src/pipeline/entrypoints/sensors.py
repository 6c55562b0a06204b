"""Use cases of the sensor slice as the entrypoints run them: work, produce, replay."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.sensors import SensorFleetConfig, generate_readings
from pipeline.application.ports import EventConsumer, Record, TopicPartition
from pipeline.application.sensors import BatchReport, PreparedBatch
from pipeline.application.worker import ConsumerWorker, WorkerStats
from pipeline.entrypoints.bootstrap import Pipeline

Progress = Callable[[int], None]


async def run_sensor_worker(
    pipeline: Pipeline,
    *,
    group_id: str | None = None,
    stop: asyncio.Event | None = None,
    until_caught_up: bool = False,
    stats: WorkerStats | None = None,
    on_batch: Callable[[WorkerStats], None] | None = None,
) -> WorkerStats:
    """Consume the readings topic into the store as a member of the sensors group."""
    group = group_id or pipeline.group_id("sensors")
    store = pipeline.store
    relay = pipeline.alert_relay()
    await pipeline.ensure_topics()
    # Alerts stored by an earlier run that crashed before publishing them go out first.
    await relay.relay()

    async def resolve(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        stored = await store.stored_offsets(group, partitions)
        if stored:
            await _check_within_log(pipeline, group, stored)
        return stored

    consumer = pipeline.log.consumer(
        group_id=group, topics=[pipeline.settings.topics.sensor_readings], resolve_offsets=resolve
    )
    worker: ConsumerWorker[PreparedBatch]

    async def after_batch(report: BatchReport) -> None:
        if report.new_alerts:
            await relay.relay()
        if on_batch is not None:
            on_batch(worker.stats)

    worker = ConsumerWorker(
        consumer=consumer,
        handler=pipeline.sensor_projection(group),
        batch_size=pipeline.settings.worker.batch_size,
        batch_timeout=pipeline.settings.worker.batch_timeout,
        stop=stop,
        until_caught_up=until_caught_up,
        after_batch=after_batch,
        stats=stats,
    )
    return await worker.run()


async def _check_within_log(
    pipeline: Pipeline, group: str, stored: Mapping[TopicPartition, int]
) -> None:
    """Refuse to resume from offsets past the end of the log: the topic was recreated or the
    broker's data reset while the database was kept. Reading from the start would skip every
    record below the stored offsets, so the worker stops and says so instead."""
    topics = {tp.topic for tp in stored}
    ends = {topic: await pipeline.log.end_offsets(topic) for topic in topics}
    beyond = [
        f"{tp.topic}[{tp.partition}] stored {offset} > end {ends[tp.topic].get(tp.partition, 0)}"
        for tp, offset in sorted(stored.items())
        if offset > ends[tp.topic].get(tp.partition, 0)
    ]
    if beyond:
        raise ConfigurationError(
            f"consumer group {group!r} has offsets stored in the database past the end of the "
            f"log ({'; '.join(beyond)}): the topic was recreated or the broker's data reset. "
            "Use a new group id (--group-id), or replay into a fresh database."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducePlan:
    """How a producer run lays readings out in event time."""

    start: datetime
    interval: timedelta


def plan_production(*, now: datetime, count: int | None, rate: float, sensors: int) -> ProducePlan:
    """Event-time layout for `count` readings at `rate`/s from `sensors` sensors.

    At a fixed rate each sensor reports every `sensors / rate` seconds starting now, so event
    time follows the wall clock. As fast as possible (rate 0) the readings are one second apart
    per sensor and end now, so none lies in the future."""
    if rate > 0:
        return ProducePlan(start=now, interval=timedelta(seconds=sensors / rate))
    if count is None:
        raise ValueError("--rate 0 (as fast as possible) needs --count")
    ticks = math.ceil(count / sensors)
    return ProducePlan(start=now - timedelta(seconds=ticks), interval=timedelta(seconds=1))


async def produce_sensors(
    pipeline: Pipeline,
    *,
    count: int | None,
    rate: float,
    seed: int,
    sensors: int,
    anomaly_rate: float | None = None,
    stop: asyncio.Event | None = None,
    progress: Progress | None = None,
) -> int:
    """Publish generated readings (keyed by sensor id) to the readings topic; return how many.
    `count` None produces until `stop` is set; `rate` 0 produces as fast as possible."""
    plan = plan_production(now=pipeline.clock.now(), count=count, rate=rate, sensors=sensors)
    config = SensorFleetConfig(sensors=sensors, interval=plan.interval)
    if anomaly_rate is not None:
        config = SensorFleetConfig(
            sensors=sensors, interval=plan.interval, anomaly_rate=anomaly_rate
        )
    stream = generate_readings(seed=seed, start=plan.start, config=config)
    if count is not None:
        stream = itertools.islice(stream, count)
    await pipeline.ensure_topics()
    topic = pipeline.settings.topics.sensor_readings
    codec = pipeline.reading_codec
    log = pipeline.log
    # Pace in chunks of about 50 ms of production, so that event time never runs ahead of
    # the clock by more than that and a stop request is seen at once.
    chunk = 500 if rate == 0 else max(1, min(500, int(rate / 20)))
    stop = stop or asyncio.Event()
    started = time.monotonic()
    sent = 0
    for item in stream:
        reading = item.event
        await log.publish(topic, reading.sensor_id.encode(), await codec.encode(reading))
        sent += 1
        if sent % chunk == 0:
            if progress is not None:
                progress(sent)
            ahead = sent / rate - (time.monotonic() - started) if rate > 0 else 0.0
            # Sleeping 0 still lets the consumers of an in-process log run.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(ahead, 0.0))
            if stop.is_set():
                break
    await log.flush()
    if progress is not None:
        progress(sent)
    return sent


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayPlan:
    """Which offsets of which partitions a replay covers: [start, stop) per partition."""

    start: Mapping[TopicPartition, int]
    stop: Mapping[TopicPartition, int]

    @property
    def total(self) -> int:
        """Records in the plan."""
        return sum(max(0, self.stop[tp] - self.start[tp]) for tp in self.start)


def plan_replay(
    topic: str,
    end_offsets: Mapping[int, int],
    *,
    from_offset: int,
    to_offset: int | None = None,
    partition: int | None = None,
) -> ReplayPlan:
    """The replay of `topic` from `from_offset` (to `to_offset`, exclusive, or the current end)
    in one partition or all. Raises ValueError with a readable message for impossible plans."""
    if from_offset < 0:
        raise ValueError(f"--from-offset must be >= 0, got {from_offset}")
    if to_offset is not None and to_offset <= from_offset:
        raise ValueError(f"--to-offset ({to_offset}) must be greater than --from-offset")
    if partition is not None and partition not in end_offsets:
        known = ", ".join(str(p) for p in sorted(end_offsets))
        raise ValueError(f"topic {topic} has no partition {partition} (partitions: {known})")
    partitions = [partition] if partition is not None else sorted(end_offsets)
    start: dict[TopicPartition, int] = {}
    stop: dict[TopicPartition, int] = {}
    for p in partitions:
        tp = TopicPartition(topic, p)
        end = end_offsets[p]
        stop[tp] = end if to_offset is None else min(to_offset, end)
        start[tp] = min(from_offset, stop[tp])
    return ReplayPlan(start=start, stop=stop)


class ReplayRange:
    """An EventConsumer over a manual reader that ends each partition at the plan's stop
    offset, so that the ordinary ConsumerWorker (retries, pipelining, statistics) runs a
    replay and, with `until_caught_up`, stops at the end of the plan."""

    def __init__(self, reader: EventConsumer, plan: ReplayPlan) -> None:
        self._reader = reader
        self._pending = {tp: stop for tp, stop in plan.stop.items() if plan.start[tp] < stop}

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        """The reader's records below their partition's stop offset."""
        if not self._pending:
            return []
        wanted: list[Record] = []
        for record in await self._reader.poll(max_records, timeout):
            tp = record.topic_partition
            end = self._pending.get(tp)
            if end is None:
                continue
            if record.offset < end:
                wanted.append(record)
            if record.offset + 1 >= end:
                del self._pending[tp]
        return wanted

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Nothing: a replay's offsets live in the store, under its own group."""

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions of the plan."""
        return self._reader.assignment()

    async def lag(self) -> int:
        """0 once every partition reached its stop, or nothing is left to read before it
        (records removed by retention); otherwise the reader's lag."""
        if not self._pending:
            return 0
        return await self._reader.lag()

    async def close(self) -> None:
        """Close the reader."""
        await self._reader.close()


async def replay_sensors(
    pipeline: Pipeline,
    plan: ReplayPlan,
    *,
    group_id: str,
    progress: Progress | None = None,
) -> WorkerStats:
    """Re-run the sensor projection over `plan` as consumer group `group_id`. Idempotent:
    rows already stored stay as they are and aggregates take in only readings really inserted,
    so a replay restores what is missing and changes nothing else."""
    stats = WorkerStats()
    if plan.total == 0:
        return stats
    relay = pipeline.alert_relay()

    async def after_batch(report: BatchReport) -> None:
        if report.new_alerts:
            await relay.relay()
        if progress is not None:
            progress(stats.records)

    worker = ConsumerWorker(
        consumer=ReplayRange(pipeline.log.reader(group_id=group_id, start=plan.start), plan),
        handler=pipeline.sensor_projection(group_id, publish_dead_letters=False),
        batch_size=pipeline.settings.worker.batch_size,
        batch_timeout=1.0,
        until_caught_up=True,
        after_batch=after_batch,
        stats=stats,
    )
    return await worker.run()
