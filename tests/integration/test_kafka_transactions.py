"""The Kafka-authority checkpoint on the real broker, where only Kafka can tell: a batch
failing inside its transaction leaves nothing visible to read_committed readers though its
records are in the log; a member expelled from its group cannot commit what it read; the
changelog topics are compacted. (The behaviour shared with the in-memory log is in
tests/contract/test_transactional_checkpoint.py, the crash test beside this file.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.kafka.group_consumer import KafkaGroupConsumer
from pipeline.adapters.kafka.transactions import KafkaTransactionalCheckpoint
from pipeline.application.errors import Fenced
from pipeline.application.kafka_authority import TopicSink
from pipeline.application.ports import Record, TopicPartition, TopicSpec
from pipeline.application.topic_names import changelog_topic, dead_letter_topic
from pipeline.streams.state import STREAM_TIME_STEP, loads
from tests.integration.topics import read_committed
from tests.kafka_authority import STEP, batch_of, identity, output_of, poll_all
from tests.services import KAFKA, require_service

pytestmark = pytest.mark.integration

PARTITIONS = 2
RECORDS = 8
FAST_GROUP = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}
"""A member that stops polling for 6 s is expelled (librdkafka's smallest settings)."""
EXPELLED_WHEN_IDLE = {**FAST_GROUP, "max.poll.interval.ms": "6000"}


@dataclass
class Job:
    """Unique topics and group of one test."""

    bootstrap: str
    source: str
    output: str
    group: str
    members: list[tuple[KafkaEventLog, KafkaGroupConsumer, KafkaTransactionalCheckpoint]] = field(
        default_factory=list
    )

    def member(
        self, member_id: str, consumer_config: dict[str, str] | None = None
    ) -> tuple[KafkaGroupConsumer, KafkaTransactionalCheckpoint]:
        log = KafkaEventLog(self.bootstrap, consumer_config=consumer_config or FAST_GROUP)
        consumer = log.consumer(group_id=self.group, topics=[self.source])
        assert isinstance(consumer, KafkaGroupConsumer)
        checkpoint = log.transactional_checkpoint(
            consumer,
            member_id=member_id,
            sinks={"out": TopicSink(self.output, identity)},
            steps=[STEP],
        )
        self.members.append((log, consumer, checkpoint))
        return consumer, checkpoint

    async def outputs(self) -> list[Record]:
        return await asyncio.to_thread(read_committed, self.bootstrap, self.output)

    async def changelog(self) -> list[Record]:
        topic = changelog_topic(self.group, STEP)
        return await asyncio.to_thread(read_committed, self.bootstrap, topic)

    async def dead_letters(self) -> list[Record]:
        return await asyncio.to_thread(
            read_committed, self.bootstrap, dead_letter_topic(self.source)
        )

    def high_watermark(self, topic: str) -> int:
        """Records physically in `topic`, committed or not (blocking)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        request = {KafkaTopicPartition(topic, p): OffsetSpec.latest() for p in range(PARTITIONS)}
        return sum(f.result().offset for f in admin.list_offsets(request).values())


@pytest.fixture
async def job() -> AsyncIterator[Job]:
    bootstrap = require_service(KAFKA)
    run = uuid.uuid4().hex[:10]
    job = Job(bootstrap, f"eos-src-{run}", f"eos-out-{run}", f"eos-{run}")
    log = KafkaEventLog(bootstrap)
    await log.ensure_topics(
        [
            TopicSpec(name=job.source, partitions=PARTITIONS),
            TopicSpec(name=job.output, partitions=PARTITIONS),
            TopicSpec(name=dead_letter_topic(job.source), partitions=1),
        ]
    )
    for n in range(RECORDS):
        await log.publish(job.source, f"key-{n}".encode(), f"value-{n}".encode())
    await log.flush()
    yield job
    for _, consumer, checkpoint in job.members:
        await checkpoint.close()
        await consumer.close()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [job.source, job.output, dead_letter_topic(job.source)]
    names += [changelog_topic(job.group, step) for step in (STEP, STREAM_TIME_STEP)]
    for future in admin.delete_topics(names).values():
        future.exception()


async def test_a_transaction_that_fails_before_its_commit_leaves_nothing_visible(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer, checkpoint = job.member("m1")
    records = await poll_all(consumer, RECORDS)
    batch = batch_of(job.group, records, tag="a", rejected=1)
    real_metadata = consumer.group_metadata

    def fail_once_written() -> object:
        # Runs inside the open transaction, after every record was produced: wait until
        # they are in the log, so that only the transaction keeps them from readers.
        deadline = time.monotonic() + 10
        while job.high_watermark(job.output) < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("injected failure before the commit")

    monkeypatch.setattr(consumer, "group_metadata", fail_once_written)
    with pytest.raises(RuntimeError, match="injected"):
        await checkpoint.commit(batch)

    assert job.high_watermark(job.output) >= 7  # written, then aborted
    assert await job.outputs() == []
    assert await job.changelog() == []
    assert await job.dead_letters() == []
    tps = [TopicPartition(job.source, p) for p in range(PARTITIONS)]
    assert await checkpoint.stored_offsets(job.group, tps) == {}
    assert await checkpoint.load_state(job.group, [0, 1]) == {0: {}, 1: {}}

    monkeypatch.setattr(consumer, "group_metadata", real_metadata)
    await checkpoint.commit(batch)  # the same batch, retried: visible once
    assert len(await job.outputs()) == 7
    assert await checkpoint.stored_offsets(job.group, tps) == batch.next_offsets


async def test_changelog_topics_are_compacted_with_the_partitions_of_the_source(
    job: Job,
) -> None:
    _, checkpoint = job.member("m1")

    await checkpoint.start()

    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    for topic in checkpoint.changelog_topics.values():
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        configs = next(iter(admin.describe_configs([resource]).values())).result()
        assert configs["cleanup.policy"].value == "compact"
        assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == PARTITIONS


async def test_a_member_expelled_from_its_group_cannot_commit_what_it_read(job: Job) -> None:
    zombie, zombie_checkpoint = job.member("a", EXPELLED_WHEN_IDLE)
    stale = await poll_all(zombie, RECORDS)
    # The zombie stops polling: it is expelled, and the new member takes every partition.
    successor, checkpoint = job.member("b", EXPELLED_WHEN_IDLE)
    fresh = await poll_all(successor, RECORDS)
    await checkpoint.commit(batch_of(job.group, fresh, tag="b"))

    with pytest.raises(Fenced, match="moved on"):
        await zombie_checkpoint.commit(batch_of(job.group, stale, tag="zombie"))

    outputs = await job.outputs()
    assert sorted(r.value for r in outputs) == sorted(output_of(r, "b") for r in fresh)
    state = await checkpoint.load_state(job.group, list(range(PARTITIONS)))
    values = {loads(v) for steps in state.values() for _, v in steps.get(STEP, [])}
    assert not any(str(v).startswith("zombie") for v in values)
