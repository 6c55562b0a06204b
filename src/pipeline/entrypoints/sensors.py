"""Use cases of the sensor slice as the entrypoints run them: work, produce, replay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from pipeline.adapters.clock import MonotonicTimer
from pipeline.application.alerts import AlertRelay
from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.production import planned_readings, released
from pipeline.application.generators.sensors import SensorFleetConfig
from pipeline.application.lag import consumer_lag
from pipeline.application.ports import Timer, TopicPartition
from pipeline.application.retries import not_before
from pipeline.application.sensors import BatchReport, PreparedBatch
from pipeline.application.topic_names import retry_level, retry_topic
from pipeline.application.worker import ConsumerWorker, WorkerStats
from pipeline.domain.sensors import Reading
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.replay import (
    Progress,
    ReplayPlan,
    ReplayRange,
    plan_replay,
    replay_sensors,
)

__all__ = [
    "ReplayPlan",
    "ReplayRange",
    "plan_replay",
    "produce_sensors",
    "replay_sensors",
    "run_sensor_worker",
]


async def run_sensor_worker(
    pipeline: Pipeline,
    *,
    group_id: str | None = None,
    stop: asyncio.Event | None = None,
    until_caught_up: bool = False,
    stats: WorkerStats | None = None,
    on_batch: Callable[[WorkerStats], None] | None = None,
) -> WorkerStats:
    """Consume the readings topic into the store as a member of the sensors group, and each
    retry topic `<readings>.retry.N` as a member of group `<group>.retry.N`, in this process.

    The workers share `stats` (a record diverted to a retry topic counts again when it is
    handled there) and `stop`; should one fail, the others are stopped and the error raised.
    With `until_caught_up` they run one after the other, main topic first, each until caught
    up (a retry level with nothing to read is skipped)."""
    group = group_id or pipeline.group_id("sensors")
    stop = stop or asyncio.Event()
    stats = stats or WorkerStats()
    relay = pipeline.alert_relay()
    await pipeline.ensure_topics()
    # Alerts stored by an earlier run that crashed before publishing them go out first.
    await relay.relay()
    readings = pipeline.settings.topics.sensor_readings
    levels = [
        (f"{group}.retry.{level}", retry_topic(readings, level))
        for level in range(1, len(pipeline.settings.retry.topic_delays_s) + 1)
    ]

    # One relay run at a time: two workers relaying at once would publish alerts twice.
    relaying = asyncio.Lock()

    def worker(group: str, topic: str) -> ConsumerWorker[PreparedBatch]:
        return _sensor_worker(
            pipeline,
            group=group,
            topic=topic,
            stop=stop,
            until_caught_up=until_caught_up,
            stats=stats,
            on_batch=on_batch,
            relay=relay,
            relaying=relaying,
        )

    if until_caught_up:
        await worker(group, readings).run()
        for retry_group, topic in levels:
            if not stop.is_set() and await _has_records(pipeline, retry_group, topic):
                await worker(retry_group, topic).run()
        return stats
    workers = [worker(group, readings), *(worker(g, t) for g, t in levels)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # One ended: stop was set, or it failed and the others must stop with it.
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return stats


def _sensor_worker(
    pipeline: Pipeline,
    *,
    group: str,
    topic: str,
    stop: asyncio.Event,
    until_caught_up: bool,
    stats: WorkerStats,
    on_batch: Callable[[WorkerStats], None] | None,
    relay: AlertRelay,
    relaying: asyncio.Lock,
) -> ConsumerWorker[PreparedBatch]:
    """The worker of one consumer group on one topic (the readings or a retry topic)."""
    store = pipeline.store

    async def resolve(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        stored = await store.stored_offsets(group, partitions)
        if stored:
            await _check_within_log(pipeline, group, stored)
        return stored

    consumer = pipeline.log.consumer(group_id=group, topics=[topic], resolve_offsets=resolve)
    projection = pipeline.sensor_projection(group)

    async def after_batch(report: BatchReport) -> None:
        if report.new_alerts:
            async with relaying:
                await relay.relay()
        if on_batch is not None:
            on_batch(stats)

    return ConsumerWorker(
        consumer=consumer,
        handler=projection,
        batch_size=pipeline.settings.worker.batch_size,
        batch_timeout=pipeline.settings.worker.batch_timeout,
        stop=stop,
        until_caught_up=until_caught_up,
        after_batch=after_batch,
        retry=pipeline.retry_policy(),
        stats=stats,
        diverter=projection,
        # Records of a retry topic wait, paused, until their retry.not_before.
        not_before=not_before if retry_level(topic)[1] else None,
    )


async def _has_records(pipeline: Pipeline, group: str, topic: str) -> bool:
    """Whether `topic` has records past the offsets `group` stored."""
    return await consumer_lag(pipeline.log, pipeline.store, topic, group) > 0


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
    timer: Timer | None = None,
) -> int:
    """Publish generated readings (keyed by sensor id) to the readings topic; return how many.
    `count` None produces until `stop` is set; `rate` 0 produces as fast as possible, laid out
    to end now. At a fixed rate a reading is published once `timer` (default: the monotonic
    clock) has run as long as its event time lies past the start, so event time never runs
    ahead of the clock (`generators.production`)."""
    now = pipeline.clock.now()
    fleet = SensorFleetConfig(sensors=sensors)
    if anomaly_rate is not None:
        fleet = SensorFleetConfig(sensors=sensors, anomaly_rate=anomaly_rate)
    stream = planned_readings(seed=seed, now=now, count=count, rate=rate, fleet=fleet)
    await pipeline.ensure_topics()
    topic = pipeline.settings.topics.sensor_readings
    codec = pipeline.reading_codec
    log = pipeline.log
    stop = stop or asyncio.Event()
    sent = 0
    async for item in released(
        stream,
        timer=timer or MonotonicTimer(),
        stop=stop,
        event_time=_reading_time,
        start=now if rate > 0 else None,
    ):
        reading = item.event
        await log.publish(topic, reading.sensor_id.encode(), await codec.encode(reading))
        sent += 1
        if progress is not None and sent % _PROGRESS_EVERY == 0:
            progress(sent)
    await log.flush()
    if progress is not None:
        progress(sent)
    return sent


_PROGRESS_EVERY = 500


def _reading_time(reading: Reading) -> datetime:
    return reading.timestamp
