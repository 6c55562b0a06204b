"""Dead letters on the real stack: valid readings land in PostgreSQL, every bad record lands
once on `<topic>.dlq` (Kafka, original key/value/timestamp, `dlq.*` headers) and once in the
`dead_letters` table; re-driving a fixed record lands it in the projection."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import KafkaError, Producer

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory.log import batch_bytes
from pipeline.application.dead_letters import H_ERROR_CLASS, H_OFFSET, dead_letter_topic
from pipeline.application.ports import DEFAULT_MAX_MESSAGE_BYTES, DeadLetterFilter, TopicSpec
from pipeline.domain import Reading
from pipeline.entrypoints import cli
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job
from tests.integration.conftest import settings_env
from tests.integration.topics import read_topic

pytestmark = pytest.mark.integration


def reading(now: datetime, sensor: str, value: float) -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=now - timedelta(seconds=5),
        location="site-01/floor-1",
    )


async def test_bad_records_land_once_in_the_dead_letter_topic_and_table(
    settings: Settings,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    topic = settings.topics.sensor_readings
    try:
        await produce_sensors(pipeline, count=200, rate=0, seed=3, sensors=20, anomaly_rate=0)
        good = await pipeline.reading_codec.encode(reading(now, "temp-0500", 20.0))
        bad = {
            b"k-magic": (b"\x07not wire format", "bad_magic_byte"),
            b"k-truncated": (good[:-3], "malformed_payload"),
            b"k-unknown": (b"\x00\x7f\xff\xff\xff" + good[5:], "unknown_schema_id"),
            b"k-impossible": (
                await pipeline.reading_codec.encode(reading(now, "temp-0501", -500.0)),
                "reading_out_of_range",
            ),
        }
        for key, (value, _) in bad.items():
            await pipeline.log.publish(topic, key, value, timestamp_ms=1_700_000_000_000)
        await pipeline.log.flush()

        stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 60)

        assert stats.records == 204
        assert await pipeline.store.count_readings() == 200
        letters = await read_topic(pipeline, dead_letter_topic(topic), len(bad))
        assert sorted((r.key or b"", dict(r.headers)[H_ERROR_CLASS].decode()) for r in letters) == (
            sorted((key, error_class) for key, (_, error_class) in bad.items())
        )
        for letter in letters:
            assert letter.key is not None
            assert letter.value == bad[letter.key][0]
            assert letter.timestamp_ms == 1_700_000_000_000
        stored = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter())
        assert sorted((x.key or b"", x.error_class) for x in stored) == sorted(
            (key, error_class) for key, (_, error_class) in bad.items()
        )
        assert {(x.partition, str(x.offset).encode()) for x in stored} == {
            (r.partition, dict(r.headers)[H_OFFSET]) for r in letters
        }
    finally:
        await pipeline.aclose()


async def test_a_re_driven_dead_letter_lands_in_the_projection_once_its_cause_is_fixed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The record is rejected as in the future; once the clock has moved on (the cause is
    # fixed), `pipeline dlq replay` re-drives it and the worker stores it.
    now = datetime.now(UTC).replace(microsecond=0)
    pipeline = await bootstrap(settings, clock=ManualClock(now - timedelta(hours=1)))
    topic = settings.topics.sensor_readings
    try:
        await pipeline.ensure_topics()
        value = await pipeline.reading_codec.encode(reading(now, "temp-0600", 21.0))
        await pipeline.log.publish(topic, b"temp-0600", value)
        await pipeline.log.flush()
        await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 60)
        (stored,) = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter())
        assert stored.error_class == "event_time_in_future"
        for name, value_ in settings_env(settings).items():
            monkeypatch.setenv(name, value_)

        code = await asyncio.to_thread(
            cli.main, ["dlq", "replay", "--error-class", "event_time_in_future"]
        )

        assert code == 0
        pipeline.clock = ManualClock(now)
        await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 60)
        assert await pipeline.store.count_readings() == 1
        (latest,) = await pipeline.store.latest_readings(sensor_id="temp-0600")
        assert latest.value == 21.0
    finally:
        await pipeline.aclose()


def publish_at_the_size_limit(bootstrap_servers: str, topic: str, key: bytes) -> bytes:
    """Publish (uncompressed, alone in its batch) the largest value the broker accepts on
    `topic` under `key`, proving it is the largest: one byte more is refused. Return it."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "compression.type": "none",
            "message.max.bytes": 10_000_000,
            "enable.idempotence": True,
        }
    )
    size = next(
        n
        for n in range(DEFAULT_MAX_MESSAGE_BYTES, 0, -1)
        if batch_bytes(key, b"x" * n, ()) == DEFAULT_MAX_MESSAGE_BYTES
    )
    value = b"\x07" + os.urandom(size - 1)  # not the wire format's magic byte
    outcomes: list[KafkaError | None] = []
    for candidate in (value + b"!", value):
        producer.produce(topic, candidate, key, on_delivery=lambda e, _: outcomes.append(e))
        assert producer.flush(30) == 0
    refused, accepted = outcomes
    assert refused is not None
    assert refused.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert accepted is None
    return value


async def test_a_record_at_the_topics_size_limit_is_dead_lettered_once_and_never_stops_the_worker(
    settings: Settings,
) -> None:
    pipeline = await bootstrap(settings)
    topic = settings.topics.sensor_readings
    dlq = dead_letter_topic(topic)
    worker = [sys.executable, "-m", "pipeline.entrypoints.worker", "sensors", "--until-caught-up"]
    try:
        # An older version created the dead-letter topic with the broker's default limit.
        await pipeline.log.ensure_topics([TopicSpec(name=dlq, partitions=6)])
        await produce_sensors(pipeline, count=150, rate=0, seed=3, sensors=30, anomaly_rate=0)
        big = await asyncio.to_thread(
            publish_at_the_size_limit, str(settings.kafka.bootstrap_servers), topic, b"big"
        )
        await produce_sensors(pipeline, count=150, rate=0, seed=4, sensors=30, anomaly_rate=0)

        first = await asyncio.create_subprocess_exec(*worker, env=settings_env(settings))
        assert await asyncio.wait_for(first.wait(), 120) == 0
        again = await asyncio.create_subprocess_exec(*worker, env=settings_env(settings))
        assert await asyncio.wait_for(again.wait(), 120) == 0

        assert await pipeline.store.count_readings() == 300
        (letter,) = await read_topic(pipeline, dlq, 1)
        assert (letter.key, letter.value) == (b"big", big)
        assert dict(letter.headers)[H_ERROR_CLASS] == b"bad_magic_byte"
        (stored,) = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter())
        assert (stored.key, stored.value) == (b"big", big)
    finally:
        await pipeline.aclose()
