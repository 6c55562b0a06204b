"""A record PostgreSQL refuses for good (here: a CHECK constraint it breaks) becomes a dead
letter on the real stack; every other reading of the stream is stored exactly once, and the
worker never stops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pipeline.adapters.clock import ManualClock
from pipeline.application.dead_letters import H_ERROR_CLASS, dead_letter_topic
from pipeline.application.ports import DeadLetterFilter
from pipeline.domain import Reading
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job
from tests.integration.topics import read_topic

pytestmark = pytest.mark.integration


async def test_a_reading_postgresql_refuses_is_dead_lettered_and_the_stream_goes_on(
    settings: Settings,
) -> None:
    url = settings.database.url.get_secret_value()
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "ALTER TABLE readings ADD CONSTRAINT no_condemned_sensors "
                "CHECK (sensor_id NOT LIKE 'condemned-%')"
            )
        )
    await engine.dispose()
    now = datetime.now(UTC).replace(microsecond=0)
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    topic = settings.topics.sensor_readings
    condemned = {"condemned-1", "condemned-2"}
    sensors = [f"temp-{i:04d}" for i in range(300)] + sorted(condemned)
    try:
        await pipeline.ensure_topics()
        for index, sensor in enumerate(sensors):
            reading = Reading(
                sensor_id=sensor,
                sensor_type="temperature",
                value=20.0,
                unit="celsius",
                timestamp=now - timedelta(seconds=index % 50),
                location="site-01",
            )
            value = await pipeline.reading_codec.encode(reading)
            await pipeline.log.publish(topic, sensor.encode(), value)
        await pipeline.log.flush()

        stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 90)

        assert stats.records == len(sensors)
        assert stats.written["readings"] == 300
        assert await pipeline.store.count_readings() == 300
        assert stats.rejected == {"store_rejected": 2}
        letters = await read_topic(pipeline, dead_letter_topic(topic), 2)
        assert {(r.key or b"").decode() for r in letters} == condemned
        assert {dict(r.headers)[H_ERROR_CLASS] for r in letters} == {b"store_rejected"}
        stored = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter())
        assert {(x.key or b"").decode() for x in stored} == condemned
        assert all("no_condemned_sensors" in x.message for x in stored)
    finally:
        await pipeline.aclose()
