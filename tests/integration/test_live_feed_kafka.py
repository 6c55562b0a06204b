"""The live view on the real stack: the feed reads Kafka (Avro via the schema registry) and a
WebSocket client gets what is produced after it connected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import structlog
from litestar import Litestar

from pipeline.application.live_feed import LiveFeed
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, check_thresholds
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import Settings
from tests.api.conftest import reading
from tests.api.websockets import AsgiWebSocket, running

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    structlog.reset_defaults()


@pytest.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    pipeline = await bootstrap(settings, migrate=True)
    await pipeline.ensure_topics()
    yield pipeline
    await pipeline.aclose()


@pytest.fixture
async def live(pipeline: Pipeline, settings: Settings) -> AsyncIterator[Litestar]:
    async for app in running(create_app(pipeline, settings)):
        yield app


async def test_a_reading_and_an_alert_produced_after_connect_reach_the_client(
    live: Litestar, pipeline: Pipeline
) -> None:
    feed: LiveFeed = live.state.live_feed
    taken = pipeline.clock.now() - timedelta(seconds=1)
    normal = reading(taken, sensor="kafka-live-1", value=21.0)
    hot = reading(taken, sensor="kafka-live-2", value=80.0)
    alert = check_thresholds(hot, DEFAULT_THRESHOLDS)
    assert alert is not None
    topics = pipeline.settings.topics

    async with AsgiWebSocket(live, "/ws/sensors") as ws:
        await ws.receive_json()
        await asyncio.wait_for(feed.reading.wait(), 30)
        await pipeline.log.publish(
            topics.sensor_readings, b"kafka-live-1", await pipeline.reading_codec.encode(normal)
        )
        await pipeline.log.publish(
            topics.system_alerts, b"kafka-live-2", await pipeline.alert_codec.encode(alert)
        )
        await pipeline.log.flush()

        # The two topics' records may reach the feed in either order.
        frames = await ws.receive_each("reading", "alert", timeout=30)
        reading_frame, alert_frame = frames["reading"], frames["alert"]

    assert reading_frame["sensor_id"] == "kafka-live-1"
    assert reading_frame["value"] == 21.0
    assert alert_frame["alert_id"] == str(alert.alert_id)
    assert feed.readers_opened == 1


async def test_stats_carry_the_lag_of_the_sensors_group(live: Litestar, pipeline: Pipeline) -> None:
    topics = pipeline.settings.topics
    taken = pipeline.clock.now() - timedelta(seconds=1)

    async with AsgiWebSocket(live, "/ws/sensors", {"alerts_only": "true"}) as ws:
        await ws.receive_json()
        for i in range(3):
            r = reading(taken, sensor=f"lag-{i}")
            await pipeline.log.publish(
                topics.sensor_readings, r.sensor_id.encode(), await pipeline.reading_codec.encode(r)
            )
        await pipeline.log.flush()
        stats = await ws.receive_until("stats", timeout=30)
        while stats["lag"] != 3:
            stats = await ws.receive_until("stats", timeout=30)

    assert stats["lag"] == 3  # no sensors worker ran: nothing is durable yet
