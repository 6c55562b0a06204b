"""The Kafka-authority checkpoint on the real broker: a batch's outputs, changelog entries,
dead letters and offsets become visible to read_committed readers together or not at all;
the state restored from the changelog is the state written; zombies cannot commit."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.kafka.group_consumer import KafkaGroupConsumer
from pipeline.adapters.kafka.transactions import KafkaTransactionalCheckpoint
from pipeline.application.dead_letters import H_ERROR_CLASS, dead_letter_of
from pipeline.application.errors import Fenced, ProducerFenced
from pipeline.application.kafka_authority import TopicSink
from pipeline.application.ports import Record, TopicPartition, TopicSpec
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkRows
from pipeline.application.topic_names import changelog_topic, dead_letter_topic
from pipeline.domain.errors import InvalidReading
from pipeline.streams.state import StateChange, dumps, loads
from tests.integration.topics import read_committed
from tests.services import KAFKA, require_service

pytestmark = pytest.mark.integration

PARTITIONS = 2
STEP = "count"
FAST_GROUP = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}
"""A member that stops polling for 6 s is expelled (librdkafka's smallest settings)."""
EXPELLED_WHEN_IDLE = {**FAST_GROUP, "max.poll.interval.ms": "6000"}


async def identity(row: object) -> tuple[bytes | None, bytes | None]:
    """Rows in these tests are already (key, value) pairs."""
    assert isinstance(row, tuple)
    return row[0], row[1]


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
    for n in range(8):
        await log.publish(job.source, f"key-{n}".encode(), f"value-{n}".encode())
    await log.flush()
    yield job
    for _, consumer, checkpoint in job.members:
        await checkpoint.close()
        await consumer.close()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [job.source, job.output, dead_letter_topic(job.source)]
    names += [changelog_topic(job.group, step) for step in (STEP, "__stream_time__")]
    for future in admin.delete_topics(names).values():
        future.exception()


async def poll_all(consumer: KafkaGroupConsumer, count: int = 8) -> list[Record]:
    records: list[Record] = []
    deadline = time.monotonic() + 30
    while len(records) < count:
        assert time.monotonic() < deadline, f"polled {len(records)} of {count} records"
        records += await consumer.poll(100, 0.5)
    return records


def batch_of(
    group: str,
    records: Sequence[Record],
    *,
    tag: str,
    state: Callable[[Record], bytes | None] = lambda r: dumps(tag_of(r)),
    rejected: int = 0,
) -> CheckpointBatch:
    """The batch that turns each record into an output `<tag>:<value>` and a state entry
    per key; the first `rejected` records become dead letters instead."""
    kept, bad = list(records[rejected:]), list(records[:rejected])
    starts: dict[TopicPartition, int] = {}
    nexts: dict[TopicPartition, int] = {}
    for r in records:
        starts[r.topic_partition] = min(starts.get(r.topic_partition, r.offset), r.offset)
        nexts[r.topic_partition] = max(nexts.get(r.topic_partition, 0), r.offset + 1)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return CheckpointBatch(
        group_id=group,
        start_offsets=starts,
        next_offsets=nexts,
        writes=[
            SinkRows(
                sink="out",
                rows=[(r.key, f"{tag}:{(r.value or b'').decode()}".encode()) for r in kept],
                parts=[r.partition for r in kept],
                origins=kept,
            )
        ],
        state=[StateChange(STEP, r.partition, dumps(r.key), state(r)) for r in kept],
        dead_letters=[
            dead_letter_of(r, InvalidReading("rejected"), at=at, worker_id="w", group_id=group)
            for r in bad
        ],
    )


def tag_of(record: Record) -> str:
    return (record.value or b"").decode()


async def test_a_commit_makes_outputs_changelog_dead_letters_and_offsets_visible(job: Job) -> None:
    consumer, checkpoint = job.member("m1")
    records = await poll_all(consumer)
    batch = batch_of(job.group, records, tag="a", rejected=1)

    committed = await checkpoint.commit(batch)

    assert committed.written == {"out": 7}
    assert committed.fenced == {}
    outputs = await job.outputs()
    assert sorted(r.value for r in outputs) == sorted(
        f"a:{(r.value or b'').decode()}".encode() for r in records[1:]
    )
    changelog = await job.changelog()
    assert {(r.partition, loads(r.key or b"")): loads(r.value or b"") for r in changelog} == {
        (r.partition, r.key): tag_of(r) for r in records[1:]
    }
    letters = await job.dead_letters()
    assert [(r.key, dict(r.headers)[H_ERROR_CLASS]) for r in letters] == [
        (records[0].key, b"invalid_reading")
    ]
    tps = [TopicPartition(job.source, p) for p in range(PARTITIONS)]
    assert await checkpoint.stored_offsets(job.group, tps) == batch.next_offsets


async def test_a_transaction_that_fails_before_its_commit_leaves_nothing_visible(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer, checkpoint = job.member("m1")
    records = await poll_all(consumer)
    batch = batch_of(job.group, records, tag="a", rejected=1)
    real_metadata = consumer.group_metadata

    def fail_once_written() -> object | None:
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


async def test_the_state_restored_after_a_restart_is_the_state_committed(job: Job) -> None:
    consumer, checkpoint = job.member("m1")
    records = await poll_all(consumer)
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
        part: {loads(k): loads(v) for k, v in steps.get(STEP, [])} for part, steps in state.items()
    }
    assert restored == expected
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    topic = changelog_topic(job.group, STEP)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = next(iter(admin.describe_configs([resource]).values())).result()
    assert configs["cleanup.policy"].value == "compact"
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == PARTITIONS


async def test_a_member_expelled_from_its_group_cannot_commit_what_it_read(job: Job) -> None:
    zombie, zombie_checkpoint = job.member("a", EXPELLED_WHEN_IDLE)
    stale = await poll_all(zombie)
    # The zombie stops polling: it is expelled, and the new member takes every partition.
    successor, checkpoint = job.member("b", EXPELLED_WHEN_IDLE)
    fresh = await poll_all(successor)
    await checkpoint.commit(batch_of(job.group, fresh, tag="b"))

    with pytest.raises(Fenced, match="moved on"):
        await zombie_checkpoint.commit(batch_of(job.group, stale, tag="zombie"))

    outputs = await job.outputs()
    assert sorted(r.value for r in outputs) == sorted(
        f"b:{(r.value or b'').decode()}".encode() for r in fresh
    )
    state = await checkpoint.load_state(job.group, list(range(PARTITIONS)))
    values = {loads(v) for steps in state.values() for _, v in steps.get(STEP, [])}
    assert not any(str(v).startswith("zombie") for v in values)


async def test_a_restarted_member_fences_its_previous_instance(job: Job) -> None:
    old, old_checkpoint = job.member("a")
    records = await poll_all(old)
    await old_checkpoint.commit(batch_of(job.group, records[:4], tag="old"))

    _, restarted = job.member("a")
    await restarted.start()  # registers the same transactional.id: the old producer is fenced

    with pytest.raises(ProducerFenced):
        await old_checkpoint.commit(batch_of(job.group, records[4:], tag="old"))
    with pytest.raises(ProducerFenced):  # and stays fenced
        await old_checkpoint.commit(batch_of(job.group, records[4:], tag="old"))
    assert len(await job.outputs()) == 4


async def test_a_batch_read_before_a_rebalance_commits_only_the_partitions_still_held(
    job: Job,
) -> None:
    first, checkpoint = job.member("a")
    stale = await poll_all(first)
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
    assert sorted(r.value for r in await job.outputs()) == sorted(
        f"a:{(r.value or b'').decode()}".encode() for r in kept
    )
    assert {r.partition for r in await job.changelog()} == {held.partition}
    stored = await checkpoint.stored_offsets(job.group, [held, lost])
    assert stored == {held: max(r.offset for r in kept) + 1}
