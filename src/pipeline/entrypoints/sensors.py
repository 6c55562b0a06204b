"""Producing the sensor stream as the entrypoints run it."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pipeline.adapters.clock import MonotonicTimer
from pipeline.application.generators.production import planned_readings, released
from pipeline.application.generators.sensors import SensorFleetConfig
from pipeline.application.ports import Timer
from pipeline.domain.sensors import Reading
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.replay import Progress

__all__ = ["produce_sensors"]


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
    log = pipeline.publishing_log
    stop = stop or asyncio.Event()
    sent = 0
    async for due in released(
        stream,
        timer=timer or MonotonicTimer(),
        stop=stop,
        event_time=_reading_time,
        start=now if rate > 0 else None,
    ):
        for item in due:
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
