"""The Kafka-authority checkpoint's contract, run against the in-memory log and real Kafka:
what a committed batch makes visible (to read_committed readers, on Kafka), the state
restored from the changelog, partitions moved away, and fenced instances.

`TransactionalCheckpointContract` states the behaviour; each subclass says how to build
the log and how to read back what a topic holds. Kafka-only behaviour (aborted
transactions, members expelled from their group, SIGKILL) is in tests/integration.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.application.dead_letters import H_ERROR_CLASS
from pipeline.application.errors import ProducerFenced
from pipeline.application.kafka_authority import TopicSink
from pipeline.application.ports import EventConsumer, Record, TopicPartition, TopicSpec
from pipeline.application.topic_names import changelog_topic, dead_letter_topic
from pipeline.streams.state import STREAM_TIME_STEP, dumps, loads
from tests.integration.topics import read_committed
from tests.kafka_authority import STEP, batch_of, identity, output_of, poll_all, tag_of
from tests.services import KAFKA, require_service

PARTITIONS = 2
RECORDS = 8

Read = Callable[[str], Awaitable[list[Record]]]


@dataclass
class Job:
    """One test's topics, group and members, on the log under test."""

    log: Any
    read: Read
    source: str
    output: str
    group: str
    members: list[tuple[EventConsumer, Any]] = field(default_factory=list)

    def member(self, member_id: str) -> tuple[EventConsumer, Any]:
        consumer = self.log.consumer(group_id=self.group, topics=[self.source])
        checkpoint = self.log.transactional_checkpoint(
            consumer,
            member_id=member_id,
            sinks={"out": TopicSink(self.output, identity)},
            steps=[STEP],
        )
        self.members.append((consumer, checkpoint))
        return consumer, checkpoint

    @property
    def sources(self) -> list[TopicPartition]:
        return [TopicPartition(self.source, p) for p in range(PARTITIONS)]

    async def changelog(self) -> dict[tuple[int, object], object]:
        records = await self.read(changelog_topic(self.group, STEP))
        return {(r.partition, loads(r.key or b"")): loads(r.value or b"") for r in records}


class TransactionalCheckpointContract:
    """What every Kafka-authority checkpoint must do. Subclasses provide `event_log` and
    `read` (every committed record of a topic)."""

    @pytest.fixture
    def created_topics(self) -> list[str]:
        return []

    @pytest.fixture
    async def job(
        self, event_log: Any, read: Read, created_topics: list[str]
    ) -> AsyncIterator[Job]:
        run = uuid.uuid4().hex[:10]
        job = Job(event_log, read, f"cp-src-{run}", f"cp-out-{run}", f"cp-{run}")
        created_topics += [job.source, job.output, dead_letter_topic(job.source)]
        created_topics += [changelog_topic(job.group, s) for s in (STEP, STREAM_TIME_STEP)]
        await event_log.ensure_topics(
            [
                TopicSpec(name=job.source, partitions=PARTITIONS),
                TopicSpec(name=job.output, partitions=PARTITIONS),
                TopicSpec(name=dead_letter_topic(job.source), partitions=1),
            ]
        )
        for n in range(RECORDS):
            await event_log.publish(job.source, f"key-{n}".encode(), f"value-{n}".encode())
        await event_log.flush()
        yield job
        for consumer, checkpoint in job.members:
            await checkpoint.close()
            await consumer.close()

    async def test_a_commit_makes_outputs_changelog_dead_letters_and_offsets_visible(
        self, job: Job
    ) -> None:
        consumer, checkpoint = job.member("m1")
        records = await poll_all(consumer, RECORDS)
        batch = batch_of(job.group, records, tag="a", rejected=1)

        committed = await checkpoint.commit(batch)

        assert committed.written == {"out": RECORDS - 1}
        assert committed.fenced == {}
        outputs = await job.read(job.output)
        assert sorted(r.value for r in outputs) == sorted(output_of(r, "a") for r in records[1:])
        assert await job.changelog() == {(r.partition, r.key): tag_of(r) for r in records[1:]}
        letters = await job.read(dead_letter_topic(job.source))
        assert [(r.key, dict(r.headers)[H_ERROR_CLASS]) for r in letters] == [
            (records[0].key, b"invalid_reading")
        ]
        assert await checkpoint.stored_offsets(job.group, job.sources) == batch.next_offsets

    async def test_the_state_restored_after_a_restart_is_the_state_committed(
        self, job: Job
    ) -> None:
        consumer, checkpoint = job.member("m1")
        records = await poll_all(consumer, RECORDS)
        await checkpoint.commit(batch_of(job.group, records, tag="a"))
        deleted, updated = records[0], records[1]
        # A later batch updates one entry and deletes another (a tombstone).
        await checkpoint.commit(
            batch_of(
                job.group,
                [deleted, updated],
                tag="b",
                state=lambda r: None if r is deleted else dumps("updated"),
            )
        )
        await checkpoint.close()
        await consumer.close()

        _, restarted = job.member("m1")
        state = await restarted.load_state(job.group, list(range(PARTITIONS)))

        expected: dict[int, dict[object, object]] = {p: {} for p in range(PARTITIONS)}
        for r in records[1:]:
            expected[r.partition][r.key] = "updated" if r is updated else tag_of(r)
        restored = {
            part: {loads(k): loads(v) for k, v in steps.get(STEP, [])}
            for part, steps in state.items()
        }
        assert restored == expected

    async def test_a_batch_read_before_a_rebalance_commits_only_the_partitions_still_held(
        self, job: Job
    ) -> None:
        first, checkpoint = job.member("a")
        stale = await poll_all(first, RECORDS)
        second, _ = job.member("b")
        deadline = time.monotonic() + 30
        while len(first.assignment()) != 1 or len(second.assignment()) != 1:
            assert time.monotonic() < deadline, "the group did not share its partitions"
            await asyncio.gather(first.poll(100, 0.3), second.poll(100, 0.3))
        (held,) = first.assignment()
        lost = TopicPartition(job.source, 1 - held.partition)

        committed = await checkpoint.commit(batch_of(job.group, stale, tag="a"))

        kept = [r for r in stale if r.partition == held.partition]
        assert committed.fenced == {lost: 0}
        assert committed.written == {"out": len(kept)}
        outputs = await job.read(job.output)
        assert sorted(r.value for r in outputs) == sorted(output_of(r, "a") for r in kept)
        assert {part for part, _ in await job.changelog()} == {held.partition}
        stored = await checkpoint.stored_offsets(job.group, job.sources)
        assert stored == {held: max(r.offset for r in kept) + 1}

    async def test_a_member_that_left_its_group_writes_nothing_of_what_it_read(
        self, job: Job
    ) -> None:
        consumer, checkpoint = job.member("a")
        records = await poll_all(consumer, RECORDS)
        await consumer.close()

        committed = await checkpoint.commit(batch_of(job.group, records, tag="a"))

        assert committed.fenced == {tp: 0 for tp in job.sources}
        assert await job.read(job.output) == []
        assert await job.changelog() == {}
        assert await checkpoint.stored_offsets(job.group, job.sources) == {}

    async def test_a_restarted_member_fences_its_previous_instance(self, job: Job) -> None:
        old, old_checkpoint = job.member("a")
        records = await poll_all(old, RECORDS)
        await old_checkpoint.commit(batch_of(job.group, records[:4], tag="old"))

        _, restarted = job.member("a")
        await restarted.start()  # the same group and member id: the old instance is fenced

        with pytest.raises(ProducerFenced):
            await old_checkpoint.commit(batch_of(job.group, records[4:], tag="old"))
        with pytest.raises(ProducerFenced):  # and stays fenced
            await old_checkpoint.commit(batch_of(job.group, records[4:], tag="old"))
        assert len(await job.read(job.output)) == 4


class TestInMemoryTransactionalCheckpoint(TransactionalCheckpointContract):
    """The contract on the embedded in-memory log."""

    @pytest.fixture
    async def event_log(self) -> AsyncIterator[InMemoryEventLog]:
        log = InMemoryEventLog()
        yield log
        await log.close()

    @pytest.fixture
    def read(self, event_log: InMemoryEventLog) -> Read:
        async def read(topic: str) -> list[Record]:
            ends = await event_log.end_offsets(topic)
            reader = event_log.reader(
                group_id="inspect", start={TopicPartition(topic, p): 0 for p in ends}
            )
            try:
                return await reader.poll(1_000_000, 0) if sum(ends.values()) else []
            finally:
                await reader.close()

        return read


@pytest.mark.integration
class TestKafkaTransactionalCheckpoint(TransactionalCheckpointContract):
    """The contract on Kafka, read back by read_committed consumers."""

    @pytest.fixture
    async def event_log(self, created_topics: list[str]) -> AsyncIterator[KafkaEventLog]:
        bootstrap = require_service(KAFKA)
        log = KafkaEventLog(
            bootstrap,
            consumer_config={"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
        )
        yield log
        await log.close()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics(created_topics, operation_timeout=20).values():
            future.exception()

    @pytest.fixture
    def read(self) -> Read:
        bootstrap = require_service(KAFKA)

        async def read(topic: str) -> list[Record]:
            return await asyncio.to_thread(read_committed, bootstrap, topic)

        return read
