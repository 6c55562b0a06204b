"""Producing the sensor stream as the entrypoints run it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.application.generators.sensors import SensorFleetConfig, generate_readings
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.replay import Progress

__all__ = ["ProducePlan", "plan_production", "produce_sensors"]


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
