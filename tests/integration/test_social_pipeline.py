"""End to end on the real stack: the social jobs between Kafka (Avro, schema registry) and
PostgreSQL give exactly the rows, alerts and dead letters the deterministic driver gives for
the same records, also when the worker is killed with SIGKILL mid-stream."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.adapters.avro import engagement_codec, post_codec
from pipeline.adapters.avro.social import hashtag_use_codec
from pipeline.adapters.memory.partitioner import partition_for_key
from pipeline.adapters.sql import SqlSensorStore, tables
from pipeline.application.ports import DeadLetterFilter
from pipeline.application.topic_names import dead_letter_topic
from pipeline.domain.alerts import AlertDomain
from pipeline.domain.social import Engagement, EngagementKind, HashtagUse, Post
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job
from pipeline.streams import Job
from pipeline.streams.testing import TestDriver
from tests.integration.conftest import settings_env
from tests.integration.topics import read_committed

pytestmark = pytest.mark.integration
PARTITIONS = 3  # TopicSettings.default_partitions
BATCH = 20


@pytest.fixture
def social_settings(settings: Settings) -> Settings:
    topics = settings.topics.model_copy(
        update={"social_hashtags": f"{settings.topics.social_posts}-hashtags"}
    )
    return settings.model_copy(update={"topics": topics})


@pytest.fixture
def start() -> datetime:
    # Event time runs past the wall clock, so that no partition's idle watermark (the clock
    # less the idle timeout) closes a window the records alone would not: the rows are those
    # of the records, whatever the timing of the run.
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=60)


def reference(
    job: Job, topic: str, values: Sequence[tuple[bytes, Any]], batch: int = BATCH
) -> TestDriver:
    """The job on the deterministic driver over `values` (key, value), each in the partition
    Kafka's partitioner gives its key, in the same order, in batches as small as the
    worker's: `kafka` is alone in its partition, one use every other minute, so a batch of
    BATCH records from it spans 40 minutes of event time, within the hour by which a hop
    may close late and still be scored (HISTORY_GRACE)."""
    driver = TestDriver(job, partitions=PARTITIONS, now=datetime(2000, 1, 1, tzinfo=UTC))
    for key, value in values:
        driver.send(topic, value, partition=partition_for_key(key, PARTITIONS))
    driver.run(batch_size=batch)
    return driver


async def publish(
    pipeline: Pipeline, topic: str, codec: Any, values: Sequence[Any], key: Any
) -> None:
    await pipeline.log.ensure_topics(pipeline.topic_specs())
    for value in values:
        await pipeline.log.publish(topic, key(value), await codec.encode(value))
    await pipeline.log.flush()


def uses_with_a_burst(start: datetime) -> list[HashtagUse]:
    """Three hours of uses in time order: `ai` once a minute, 8 more a minute for five minutes
    from minute 160 (a burst), four other tags every other minute."""
    uses = []
    for minute in range(180):
        at = start + timedelta(minutes=minute)
        extra = 8 if 160 <= minute < 165 else 0
        for n in range(1 + extra):
            uses.append(HashtagUse(tag="ai", post_id=f"a{minute}-{n}", author="user_00001",
                                   timestamp=at + timedelta(seconds=5 * n)))  # fmt: skip
        if minute % 2 == 0:
            for tag in ("cats", "jazz", "kafka", "python"):
                uses.append(HashtagUse(tag=tag, post_id=f"{tag}{minute}", author="user_00002",
                                       timestamp=at + timedelta(seconds=50)))  # fmt: skip
    return uses


async def history_rows(pipeline: Pipeline) -> list[tuple[Any, ...]]:
    assert isinstance(pipeline.store, SqlSensorStore)
    h = tables.social_tag_history
    async with pipeline.store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(h.c.tag, h.c.window_start, h.c.count, h.c.score, h.c.burst_start)
        )
        return sorted(tuple(r) for r in rows)


async def trending_rows(pipeline: Pipeline) -> list[tuple[Any, ...]]:
    assert isinstance(pipeline.store, SqlSensorStore)
    t = tables.social_trending
    async with pipeline.store.engine.connect() as conn:
        rows = await conn.execute(sa.select(t.c.window_start, t.c.tag, t.c.count))
        return sorted(tuple(r) for r in rows)


async def test_social_job_killed_mid_stream_gives_exactly_the_drivers_rows_and_one_alert(
    social_settings: Settings, start: datetime
) -> None:
    settings = social_settings
    topic = settings.topics.social_hashtags
    uses = uses_with_a_burst(start)
    expected = reference(JOBS["social"].build(settings), topic, [(u.tag.encode(), u) for u in uses])
    env = settings_env(settings) | {
        "PIPELINE_TOPICS__SOCIAL_HASHTAGS": topic,
        "PIPELINE_WORKER__BATCH_SIZE": str(BATCH),
    }
    worker = [sys.executable, "-m", "pipeline.entrypoints.worker", "social"]
    pipeline = await bootstrap(settings)
    try:
        codec = hashtag_use_codec(pipeline.registry, topic)
        await publish(pipeline, topic, codec, uses, key=lambda u: u.tag.encode())
        first = await asyncio.create_subprocess_exec(*worker, env=env)
        async with asyncio.timeout(180):
            while len(await history_rows(pipeline)) < 100:
                await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        at_kill = len(await history_rows(pipeline))

        second = await asyncio.create_subprocess_exec(*worker, "--until-caught-up", env=env)
        assert await asyncio.wait_for(second.wait(), 240) == 0

        hops = expected.results("social_tag_history")
        assert 0 < at_kill < len(hops), "the kill must land mid-stream"
        assert await history_rows(pipeline) == sorted(
            (h.tag, h.window_start, h.count, h.score, h.burst_start) for h in hops
        )
        assert await trending_rows(pipeline) == sorted(
            (t.window_start, t.tag, t.count) for t in expected.results("social_trending")
        )
        [alert] = expected.results("alerts")
        stored = await pipeline.store.alerts(limit=100)
        assert [(a.alert_id, a.source, a.domain) for a in stored] == [
            (alert.alert_id, "ai", AlertDomain.SOCIAL)
        ]
        published = await pipeline.log.end_offsets(settings.topics.system_alerts)
        assert sum(published.values()) == 1
    finally:
        await pipeline.aclose()


def posts_and_engagement(start: datetime) -> tuple[list[Post], list[Engagement]]:
    """60 posts a minute apart (one or two tags), two of them invalid; likes and shares of
    every third post within the hour, one after it, and one invalid engagement."""
    posts, engagement = [], []
    for n in range(60):
        tags = ("ai",) if n % 2 else ("ai", "kafka")
        text = "   " if n in (7, 31) else "Hot take " + " ".join(f"#{t}" for t in tags)
        posts.append(Post(post_id=f"p{n}", author=f"user_{n % 5:05d}", text=text,
                          hashtags=tags, timestamp=start + timedelta(minutes=n)))  # fmt: skip
    for n in range(0, 60, 3):
        at = start + timedelta(minutes=n)
        for e, (delay, kind) in enumerate(
            [(5, EngagementKind.LIKE), (30, EngagementKind.SHARE), (61, EngagementKind.LIKE)]
        ):
            engagement.append(
                Engagement(engagement_id=f"p{n}-e{e}", post_id=f"p{n}", user="u", kind=kind,
                           timestamp=at + timedelta(minutes=delay))
            )  # fmt: skip
    engagement.sort(key=lambda e: e.timestamp)
    invalid = Engagement(engagement_id="", post_id="p3", user="u", kind=EngagementKind.LIKE,
                         timestamp=start + timedelta(hours=2))  # fmt: skip
    engagement.append(invalid)
    return posts, engagement


async def test_posts_become_hashtag_uses_and_engagement_per_post_with_dead_letters(
    social_settings: Settings, start: datetime
) -> None:
    settings = social_settings
    topics = settings.topics
    posts, engagement = posts_and_engagement(start)
    valid = [p for p in posts if p.text.strip()]
    by_post = [(p.post_id.encode(), p) for p in posts]
    expected = reference(JOBS["post-engagement"].build(settings), topics.social_posts, by_post)
    for e in engagement:
        expected.send(
            topics.social_engagement, e, partition=partition_for_key(e.post_id.encode(), 3)
        )
    expected.run()
    pipeline = await bootstrap(settings)
    try:
        posts_codec = post_codec(pipeline.registry, topics.social_posts)
        await publish(pipeline, topics.social_posts, posts_codec, posts,
                      key=lambda p: p.post_id.encode())  # fmt: skip
        await publish(pipeline, topics.social_engagement,
                      engagement_codec(pipeline.registry, topics.social_engagement),
                      engagement, key=lambda e: e.post_id.encode())  # fmt: skip

        for job in ("social-tags", "post-engagement"):
            await asyncio.wait_for(run_named_job(pipeline, job, until_caught_up=True), 120)

        written = await asyncio.to_thread(
            read_committed, settings.kafka.bootstrap_servers or "", topics.social_hashtags
        )
        codec = hashtag_use_codec(pipeline.registry, topics.social_hashtags)
        uses = [u for u in await codec.decode_many([r.value for r in written])
                if isinstance(u, HashtagUse)]  # fmt: skip
        assert sorted((u.post_id, u.tag) for u in uses) == sorted(
            (p.post_id, tag) for p in valid for tag in p.hashtags
        )
        assert all(r.key == u.tag.encode() for r, u in zip(written, uses, strict=True))
        assert isinstance(pipeline.store, SqlSensorStore)
        per_post = tables.social_post_engagement
        columns = (per_post.c.post_id, per_post.c.likes, per_post.c.shares)
        async with pipeline.store.engine.connect() as conn:
            stored = sorted(tuple(r) for r in await conn.execute(sa.select(*columns)))
        final = {r.post_id: (r.post_id, r.likes, r.shares)
                 for r in expected.results("social_post_engagement")}  # fmt: skip
        assert stored == sorted(final.values())
        assert all(likes == 1 and shares == 1 for _, likes, shares in stored)
        dead = await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter(), limit=100)
        assert sorted((d.topic, d.error_class) for d in dead) == [
            (topics.social_engagement, "invalid_engagement"),
            (topics.social_posts, "invalid_post"),
            (topics.social_posts, "invalid_post"),
        ]
        # Two jobs read the posts; only post-engagement dead-letters an invalid one.
        dlq = await asyncio.to_thread(
            read_committed,
            settings.kafka.bootstrap_servers or "",
            dead_letter_topic(topics.social_posts),
        )
        posts_letters = [(d.partition, d.offset) for d in dead if d.topic == topics.social_posts]
        assert sorted(
            (int(h["dlq.original.partition"]), int(h["dlq.original.offset"]))
            for h in ({k: v.decode() for k, v in r.headers} for r in dlq)
        ) == sorted(posts_letters)
    finally:
        await pipeline.aclose()
