"""The shop job end to end on the real stack: shop events → Kafka (Avro, registry) →
`pipeline-worker shop` → PostgreSQL. Two hours of sessions with a quarter-hour without any
purchase (a checkout outage) and three invalid events are produced; the tables must hold
exactly the rows the same job computes on the deterministic driver from the same records
(same partitions, same order), the alerts table its conversion-drop alerts, the DLQ the
invalid events by rule — also when the worker is SIGKILLed mid-stream and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.adapters.avro import shop_event_codec
from pipeline.adapters.sql import SqlSensorStore
from pipeline.adapters.sql.shop_store import SHOP_SINKS
from pipeline.application.ports import DeadLetterFilter, TopicPartition
from pipeline.domain import ShopEvent
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.settings import Settings, ShopSettings
from pipeline.entrypoints.worker import run_named_job
from pipeline.streams.testing import TestDriver
from tests.integration.conftest import settings_env
from tests.integration.topics import assert_stored_offsets_at_ends, read_topic
from tests.shop_events import a_cart, a_purchase, a_search, a_view

pytestmark = pytest.mark.integration

MIN = timedelta(minutes=1)
SHOP = ShopSettings(conversion_min_views=3, conversion_min_recent_purchases=3)
SHOP_ENV = {
    "PIPELINE_SHOP__CONVERSION_MIN_VIEWS": "3",
    "PIPELINE_SHOP__CONVERSION_MIN_RECENT_PURCHASES": "3",
}
OUTAGE = range(60, 75)
"""Minutes of the stream without a purchase."""


def shop_stream(start: datetime) -> list[ShopEvent]:
    """Two hours of sessions from `start`, six a minute: every one views, every second adds
    to the cart, every third of those buys (none during OUTAGE); three invalid events."""
    events: list[ShopEvent] = [
        a_purchase("bad-1", start, ("prod-00001", 1, "5"), currency="JPY"),
        a_view("bad-2", start, product=""),
        a_search("bad-3", start, query=" "),
    ]
    for minute in range(120):
        at = start + minute * MIN
        for i in range(6):
            session = f"s{minute}-{i}"
            events.append(a_view(session, at + timedelta(seconds=i)))
            if i % 2 == 0:
                events.append(a_cart(session, at + timedelta(seconds=10 + i)))
            if i % 3 == 0 and minute not in OUTAGE:
                line = (f"prod-{minute % 13:05d}", 1 + i, "12.50")
                currency = "EUR" if minute % 2 else "GBP"
                events.append(
                    a_purchase(session, at + timedelta(seconds=20 + i), line, currency=currency)
                )
    return sorted(events, key=lambda e: e.timestamp)


@pytest.fixture
def shop_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"shop": SHOP})


async def produce(pipeline: Pipeline, events: list[ShopEvent]) -> None:
    topic = pipeline.settings.topics.ecommerce_events
    await pipeline.ensure_topics()
    codec = shop_event_codec(pipeline.registry, topic)
    for event in events:
        await pipeline.log.publish(topic, event.session_id.encode(), await codec.encode(event))
    await pipeline.log.flush()


async def expected(pipeline: Pipeline, count: int) -> tuple[TestDriver, TestDriver]:
    """The shop job on the driver over the topic's records, partition by partition in
    offset order: once with the windows the records' own event times close (what the worker
    must at least have written), and once with every window closed (what it may have)."""
    settings = pipeline.settings
    topic = settings.topics.ecommerce_events
    records = await read_topic(pipeline, topic, count)
    codec = shop_event_codec(pipeline.registry, topic)
    values = await codec.decode_many([r.value for r in records])
    partitions = len(await pipeline.log.end_offsets(topic))
    drivers = []
    for _ in range(2):
        driver = TestDriver(
            JOBS["shop"].build(settings), partitions=partitions, now=datetime.now(UTC)
        )
        for record, value in sorted(
            zip(records, values, strict=True), key=lambda rv: (rv[0].partition, rv[0].offset)
        ):
            driver.send(topic, value, partition=record.partition)
        driver.run()
        drivers.append(driver)
    drivers[1].advance(timedelta(days=1))
    return drivers[0], drivers[1]


async def stored(pipeline: Pipeline, sink: str) -> set[tuple[Any, ...]]:
    spec = SHOP_SINKS[sink]
    assert isinstance(pipeline.store, SqlSensorStore)
    async with pipeline.store.engine.connect() as conn:
        result = await conn.execute(sa.select(*(spec.table.c[c] for c in spec.columns)))
        return {tuple(row) for row in result}


async def assert_exactly_the_jobs_rows(pipeline: Pipeline, count: int) -> None:
    at_least, at_most = await expected(pipeline, count)
    for sink, spec in SHOP_SINKS.items():
        rows = await stored(pipeline, sink)
        least = {spec.values(r) for r in at_least.results(sink)}
        most = {spec.values(r) for r in at_most.results(sink)}
        assert least, f"{sink}: the stream is expected to close some windows"
        assert least <= rows <= most, sink
    alerts = {a.alert_id for a in await pipeline.store.alerts(limit=1000)}
    least_alerts = {a.alert_id for a in at_least.results("alerts")}
    assert least_alerts, "the outage is expected to raise a conversion-drop alert"
    assert least_alerts <= alerts <= {a.alert_id for a in at_most.results("alerts")}
    letters = await pipeline.dead_letter_store().find_dead_letters(
        DeadLetterFilter(topic=pipeline.settings.topics.ecommerce_events)
    )
    assert Counter(d.error_class for d in letters) == {
        "unsupported_currency": 1,
        "invalid_shop_event": 2,
    }
    topic = pipeline.settings.topics.ecommerce_events
    await assert_stored_offsets_at_ends(pipeline, "shop", topic)


async def test_shop_events_become_exactly_the_jobs_rows_alerts_and_dead_letters(
    shop_settings: Settings,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    events = shop_stream(now - timedelta(hours=2, minutes=10))
    pipeline = await bootstrap(shop_settings)
    try:
        await produce(pipeline, events)

        stats = await asyncio.wait_for(run_named_job(pipeline, "shop", until_caught_up=True), 180)

        assert stats.records == len(events)
        await assert_exactly_the_jobs_rows(pipeline, len(events))
        published = await pipeline.log.end_offsets(shop_settings.topics.system_alerts)
        assert sum(published.values()) == len(await pipeline.store.alerts(limit=1000))
    finally:
        await pipeline.aclose()


async def test_a_worker_killed_mid_stream_changes_nothing(shop_settings: Settings) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    events = shop_stream(now - timedelta(hours=2, minutes=10))
    pipeline = await bootstrap(shop_settings)
    env = settings_env(shop_settings) | SHOP_ENV | {"PIPELINE_WORKER__BATCH_SIZE": "40"}
    worker = [sys.executable, "-m", "pipeline.entrypoints.worker", "shop"]
    topic = shop_settings.topics.ecommerce_events
    try:
        await produce(pipeline, events)
        ends = await pipeline.log.end_offsets(topic)
        partitions = [TopicPartition(topic, p) for p in ends]
        first = await asyncio.create_subprocess_exec(*worker, env=env)
        done = 0
        async with asyncio.timeout(180):
            while done < len(events) // 5:
                await asyncio.sleep(0.05)
                offsets = await pipeline.checkpoint.stored_offsets(
                    pipeline.group_id("shop"), partitions
                )
                done = sum(offsets.values())
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        assert done < len(events), "the kill must land mid-stream"

        second = await asyncio.create_subprocess_exec(*worker, "--until-caught-up", env=env)
        assert await asyncio.wait_for(second.wait(), 240) == 0

        await assert_exactly_the_jobs_rows(pipeline, len(events))
    finally:
        await pipeline.aclose()
