"""The EventLog / EventConsumer contract, run against the in-memory log and real Kafka.

`EventLogContract` states the behaviour; each subclass only says how to build the log.
Kafka tests create uniquely named topics and groups, and delete their topics afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from uuid import uuid4

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.memory.log import batch_bytes
from pipeline.adapters.memory.partitioner import partition_for_key
from pipeline.application.errors import (
    ConfigurationError,
    PublishError,
    RecordTooLarge,
    StoreUnavailable,
)
from pipeline.application.ports import (
    DEFAULT_MAX_MESSAGE_BYTES,
    CaughtUp,
    EventConsumer,
    EventLog,
    OutgoingRecord,
    Record,
    TopicPartition,
    TopicSpec,
)
from tests.services import KAFKA, require_service

NewTopic = Callable[..., Awaitable[str]]
OpenConsumer = Callable[..., EventConsumer]

SETTLE_S = 30.0
"""Upper bound for a group to (re)balance; Kafka needs seconds, memory none."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex}"


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """The offsets to commit after processing `records`."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        offsets[record.topic_partition] = max(
            offsets.get(record.topic_partition, 0), record.offset + 1
        )
    return offsets


async def read(consumer: EventConsumer, count: int, max_records: int = 500) -> list[Record]:
    """Poll until at least `count` records arrived (or fail after SETTLE_S)."""
    records: list[Record] = []
    deadline = time.monotonic() + SETTLE_S
    while len(records) < count:
        assert time.monotonic() < deadline, f"read {len(records)} of {count} records"
        records.extend(await consumer.poll(max_records, 0.5))
    return records


async def poll_until(
    members: Sequence[EventConsumer], done: Callable[[], bool], seen: list[Record]
) -> None:
    """Poll every member concurrently, committing each batch, until `done()`."""
    deadline = time.monotonic() + SETTLE_S
    while not done():
        assert time.monotonic() < deadline, "the group did not reach the expected state"
        batches = await asyncio.gather(*(m.poll(100, 0.3) for m in members))
        for member, batch in zip(members, batches, strict=True):
            seen.extend(batch)
            if batch:
                await member.commit(next_offsets(batch))


def key_for(partition: int, partitions: int) -> bytes:
    """A key that Kafka's default partitioner puts in `partition`."""
    return next(
        key
        for key in (f"key-{i}".encode() for i in range(1000))
        if partition_for_key(key, partitions) == partition
    )


async def publish_values(log: EventLog, topic: str, key: bytes | None, values: range) -> None:
    for value in values:
        await log.publish(topic, key, str(value).encode())
    await log.flush(timeout=20)


def value_filling(limit: int, key: bytes, headers: tuple[tuple[str, bytes], ...]) -> bytes:
    """Random (incompressible) bytes that make a record of exactly `limit` bytes as Kafka
    counts it against max.message.bytes (`batch_bytes`, which this suite checks)."""
    size = next(
        n for n in range(limit, limit - 100, -1) if batch_bytes(key, b"x" * n, headers) == limit
    )
    return os.urandom(size)


class Recorder:
    """A `resolve_offsets` that notes which partitions it was asked about, call by call."""

    def __init__(self) -> None:
        self.calls: list[list[TopicPartition]] = []

    async def __call__(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        self.calls.append(sorted(partitions))
        return {}


class EventLogContract:
    """What every EventLog adapter must do. Subclasses provide the `event_log` fixture."""

    @pytest.fixture
    def created_topics(self) -> list[str]:
        return []

    @pytest.fixture
    def new_topic(self, event_log: EventLog, created_topics: list[str]) -> NewTopic:
        async def create(partitions: int = 1) -> str:
            name = unique("test")
            created_topics.append(name)
            await event_log.ensure_topics([TopicSpec(name=name, partitions=partitions)])
            return name

        return create

    @pytest.fixture
    async def open_consumer(self, event_log: EventLog) -> AsyncIterator[OpenConsumer]:
        opened: list[EventConsumer] = []

        def open_(**kwargs: object) -> EventConsumer:
            method = event_log.reader if "start" in kwargs else event_log.consumer
            consumer = method(**kwargs)  # type: ignore[arg-type]
            opened.append(consumer)
            return consumer

        yield open_
        for consumer in opened:
            await consumer.close()

    # -- topics ---------------------------------------------------------------------------

    async def test_ensure_topics_creates_topics_with_the_requested_partition_counts(
        self, event_log: EventLog, created_topics: list[str]
    ) -> None:
        names = [unique("test"), unique("test")]
        created_topics.extend(names)

        await event_log.ensure_topics(
            [TopicSpec(name=names[0], partitions=3), TopicSpec(name=names[1], partitions=1)]
        )

        assert await event_log.end_offsets(names[0]) == {0: 0, 1: 0, 2: 0}
        assert await event_log.end_offsets(names[1]) == {0: 0}

    async def test_ensure_topics_leaves_an_existing_topic_and_its_records_as_they_are(
        self, event_log: EventLog, new_topic: NewTopic
    ) -> None:
        topic = await new_topic(partitions=2)
        await publish_values(event_log, topic, b"k", range(3))

        await event_log.ensure_topics([TopicSpec(name=topic, partitions=5)])

        offsets = await event_log.end_offsets(topic)
        assert sorted(offsets) == [0, 1]
        assert sum(offsets.values()) == 3

    async def test_a_deleted_topic_is_gone_with_its_records_and_its_name_can_be_used_again(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        deleted, kept = await new_topic(partitions=2), await new_topic(partitions=1)
        await publish_values(event_log, deleted, b"k", range(3))
        await publish_values(event_log, kept, b"k", range(2))
        group = unique("group")
        member = open_consumer(group_id=group, topics=[deleted])
        await member.commit(next_offsets(await read(member, 3)))
        await member.close()

        await event_log.delete_topics([deleted, unique("never-created")])
        await event_log.ensure_topics([TopicSpec(name=deleted, partitions=3)])

        # A new topic: the partition count asked now, no records, no committed offsets.
        assert await event_log.end_offsets(deleted) == {0: 0, 1: 0, 2: 0}
        await publish_values(event_log, deleted, b"k", range(1))
        again = open_consumer(group_id=group, topics=[deleted])
        assert [r.value for r in await read(again, 1)] == [b"0"]
        assert await event_log.end_offsets(kept) == {0: 2}

    async def test_ensure_topics_rejects_a_topic_without_partitions(
        self, event_log: EventLog
    ) -> None:
        with pytest.raises(ConfigurationError):
            await event_log.ensure_topics([TopicSpec(name=unique("test"), partitions=0)])

    async def test_end_offsets_of_an_unknown_topic_are_empty(self, event_log: EventLog) -> None:
        assert await event_log.end_offsets(unique("missing")) == {}

    # -- publishing -----------------------------------------------------------------------

    async def test_publishing_to_an_unknown_topic_fails(self, event_log: EventLog) -> None:
        async def publish_and_flush() -> None:
            await event_log.publish(unique("missing"), b"k", b"v")
            await event_log.flush(timeout=20)

        with pytest.raises(PublishError):
            await publish_and_flush()

    async def test_publishing_after_close_fails(
        self, event_log: EventLog, new_topic: NewTopic
    ) -> None:
        topic = await new_topic()
        await event_log.close()

        with pytest.raises(PublishError):
            await event_log.publish(topic, b"k", b"v")

    async def test_a_published_record_is_read_back_with_key_value_headers_and_timestamp(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        tp = TopicPartition(topic, 0)
        before_ms = time.time_ns() // 1_000_000
        headers = (("event-type", b"reading"), ("trace", b"\x00\x01"), ("event-type", b"x"))
        await event_log.publish(topic, b"sensor-1", b"value-1", headers)
        await event_log.flush()
        after_ms = time.time_ns() // 1_000_000

        [record] = await read(open_consumer(group_id=unique("g"), start={tp: 0}), 1)

        assert record.topic_partition == tp
        assert record.offset == 0
        assert (record.key, record.value, record.headers) == (b"sensor-1", b"value-1", headers)
        assert before_ms - 1000 <= record.timestamp_ms <= after_ms + 1000

    async def test_a_record_without_key_is_read_back_without_key(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        await event_log.publish(topic, None, b"anonymous")
        await event_log.flush()

        [record] = await read(
            open_consumer(group_id=unique("g"), start={TopicPartition(topic, 0): 0}), 1
        )

        assert (record.key, record.value, record.headers) == (None, b"anonymous", ())

    async def test_records_with_one_key_go_to_one_partition_in_publish_order(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic(partitions=4)
        for i in range(30):
            await event_log.publish(topic, f"sensor-{i % 3}".encode(), str(i).encode())
        await event_log.flush()

        start = {TopicPartition(topic, p): 0 for p in range(4)}
        records = await read(open_consumer(group_id=unique("g"), start=start), 30)

        for sensor in range(3):
            mine = [r for r in records if r.key == f"sensor-{sensor}".encode()]
            assert len({r.partition for r in mine}) == 1
            assert [int(r.value or b"") for r in mine] == list(range(sensor, 30, 3))
            assert [r.offset for r in mine] == sorted(r.offset for r in mine)

    async def test_keys_land_in_the_partition_of_kafkas_default_murmur2_partitioner(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic(partitions=6)
        keys = [f"sensor-{i}".encode() for i in range(40)]
        for key in keys:
            await event_log.publish(topic, key, b"v")
        await event_log.flush()

        start = {TopicPartition(topic, p): 0 for p in range(6)}
        records = await read(open_consumer(group_id=unique("g"), start=start), len(keys))

        assert {r.key: r.partition for r in records} == {
            key: partition_for_key(key, 6) for key in keys
        }

    async def test_end_offsets_are_the_next_offset_of_every_partition(
        self, event_log: EventLog, new_topic: NewTopic
    ) -> None:
        topic = await new_topic(partitions=3)
        keys = [f"k{i}".encode() for i in range(25)]
        for key in keys:
            await event_log.publish(topic, key, b"v")
        await event_log.flush()

        expected = Counter(partition_for_key(key, 3) for key in keys)
        assert await event_log.end_offsets(topic) == {p: expected[p] for p in range(3)}

    async def test_offsets_for_a_time_are_the_first_records_stamped_at_or_after_it(
        self, event_log: EventLog, new_topic: NewTopic
    ) -> None:
        topic = await new_topic(partitions=2)
        base = 1_767_225_600_000
        for i in range(6):  # same key: one partition, stamped 0, 10, … 50 s after base
            await event_log.publish(topic, b"k", b"v", timestamp_ms=base + 10_000 * i)
        await event_log.flush()
        ends = await event_log.end_offsets(topic)
        used = next(p for p, end in ends.items() if end)

        found = await event_log.offsets_for_time(topic, base + 25_000)
        after_all = await event_log.offsets_for_time(topic, base + 3_600_000)

        assert found[used] == 3  # the record stamped 30 s in
        assert after_all == ends  # nothing that late: each partition's end

    # -- record sizes ---------------------------------------------------------------------

    async def test_deliver_refuses_only_a_record_over_its_topics_size_limit(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        headers = (("trace", b"abc"),)
        at_limit = value_filling(DEFAULT_MAX_MESSAGE_BYTES, b"k", headers)

        outcomes = await event_log.deliver(
            [
                OutgoingRecord(topic=topic, key=b"k", value=b"before"),
                OutgoingRecord(topic=topic, key=b"k", value=at_limit, headers=headers),
                OutgoingRecord(topic=topic, key=b"k", value=at_limit + b"!", headers=headers),
                OutgoingRecord(topic=topic, key=b"k", value=b"after"),
            ]
        )

        assert outcomes[0] is None
        assert outcomes[1] is None
        assert isinstance(outcomes[2], RecordTooLarge)
        assert outcomes[3] is None
        reader = open_consumer(group_id=unique("g"), start={TopicPartition(topic, 0): 0})
        assert [r.value for r in await read(reader, 3)] == [b"before", at_limit, b"after"]

    async def test_a_topic_holding_records_of_another_takes_them_with_its_headroom(
        self, event_log: EventLog, new_topic: NewTopic, created_topics: list[str]
    ) -> None:
        source = await new_topic()
        copies = unique("copies")
        created_topics.append(copies)
        spec = TopicSpec(name=copies, partitions=1, holds_records_of=source, headroom_bytes=500)
        limit = DEFAULT_MAX_MESSAGE_BYTES + 500
        fits = value_filling(limit, b"k", ())

        await event_log.ensure_topics([spec])
        outcomes = await event_log.deliver(
            [
                OutgoingRecord(topic=copies, key=b"k", value=fits),
                OutgoingRecord(topic=copies, key=b"k", value=fits + b"!"),
            ]
        )

        assert outcomes[0] is None
        assert isinstance(outcomes[1], RecordTooLarge)

    async def test_ensure_topics_raises_the_size_limit_of_an_existing_topic_holding_copies(
        self, event_log: EventLog, new_topic: NewTopic
    ) -> None:
        source = await new_topic()
        copies = await new_topic()  # created before, with the default limit
        fits = value_filling(DEFAULT_MAX_MESSAGE_BYTES + 500, b"k", ())
        spec = TopicSpec(name=copies, partitions=1, holds_records_of=source, headroom_bytes=500)

        await event_log.ensure_topics([spec])
        [outcome] = await event_log.deliver([OutgoingRecord(topic=copies, key=b"k", value=fits)])

        assert outcome is None

    async def test_deliver_reports_a_record_for_an_unknown_topic_as_refused(
        self, event_log: EventLog, new_topic: NewTopic
    ) -> None:
        topic = await new_topic()

        outcomes = await event_log.deliver(
            [
                OutgoingRecord(topic=unique("missing"), key=b"k", value=b"lost"),
                OutgoingRecord(topic=topic, key=b"k", value=b"kept"),
            ],
            timeout=20,
        )

        assert isinstance(outcomes[0], PublishError)
        assert outcomes[1] is None
        assert await event_log.end_offsets(topic) == {0: 1}

    # -- consumer groups ------------------------------------------------------------------

    async def test_a_new_group_starts_at_the_earliest_record(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        await publish_values(event_log, topic, b"k", range(5))

        records = await read(open_consumer(group_id=unique("g"), topics=[topic]), 5)

        assert [r.offset for r in records] == [0, 1, 2, 3, 4]

    async def test_a_new_member_resumes_after_the_groups_committed_offsets(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, group = await new_topic(), unique("g")
        await publish_values(event_log, topic, b"k", range(10))
        first = open_consumer(group_id=group, topics=[topic])
        processed = (await read(first, 1, max_records=4))[:4]
        await first.commit(next_offsets(processed))
        await first.close()

        rest = await read(open_consumer(group_id=group, topics=[topic]), 10 - len(processed))

        assert [r.offset for r in processed + rest] == list(range(10))

    async def test_resolve_offsets_chooses_where_newly_assigned_partitions_start(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, group = await new_topic(partitions=2), unique("g")
        for partition in (0, 1):
            await publish_values(event_log, topic, key_for(partition, 2), range(10))
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        await open_consumer(group_id=group, start={tp0: 0}).commit({tp0: 2, tp1: 4})
        asked: list[TopicPartition] = []

        async def resolve(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
            asked.extend(partitions)
            return {tp0: 7}  # tp1 is absent: it resumes from the committed offset

        records = await read(
            open_consumer(group_id=group, topics=[topic], resolve_offsets=resolve), 9
        )

        assert sorted(asked) == [tp0, tp1]
        assert sorted((r.partition, r.offset) for r in records) == [(0, 7), (0, 8), (0, 9)] + [
            (1, offset) for offset in range(4, 10)
        ]

    async def test_a_failing_resolve_offsets_is_raised_and_retried_before_any_record(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        await publish_values(event_log, topic, b"k", range(6))
        calls = 0

        async def resolve(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise StoreUnavailable("database is restarting")
            return {tp: 3 for tp in partitions}

        consumer = open_consumer(group_id=unique("g"), topics=[topic], resolve_offsets=resolve)
        with pytest.raises(StoreUnavailable):
            await read(consumer, 1)
        records = await read(consumer, 3)

        assert [r.offset for r in records] == [3, 4, 5]
        assert calls == 2

    async def test_two_members_split_the_partitions_and_read_every_record_once(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, group = await new_topic(partitions=4), unique("g")
        everything = {TopicPartition(topic, p) for p in range(4)}
        keys = [f"sensor-{i}".encode() for i in range(20)]
        for i in range(100):
            await event_log.publish(topic, keys[i % 20], b"first")
        await event_log.flush()
        members = [open_consumer(group_id=group, topics=[topic]) for _ in range(2)]
        seen: list[Record] = []

        def split() -> bool:
            a, b = (m.assignment() for m in members)
            return bool(a) and bool(b) and not a & b and a | b == everything

        await poll_until(members, lambda: split() and len(seen) >= 100, seen)
        for i in range(100):
            await event_log.publish(topic, keys[i % 20], b"second")
        await event_log.flush()
        await poll_until(members, lambda: len(seen) >= 200, seen)

        positions = Counter((r.partition, r.offset) for r in seen)
        assert len(positions) == 200
        assert set(positions.values()) == {1}
        assert split()

    async def test_co_partitioned_members_hold_the_same_partitions_of_every_topic(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        left, right, group = (
            await new_topic(partitions=4),
            await new_topic(partitions=4),
            unique("g"),
        )
        for p in range(4):
            await publish_values(event_log, left, key_for(p, 4), range(p * 10, p * 10 + 5))
            await publish_values(event_log, right, key_for(p, 4), range(p * 10, p * 10 + 5))

        def aligned(members: Sequence[EventConsumer]) -> bool:
            held = [m.assignment() for m in members]
            if not all(held) or sum(len(h) for h in held) != 8:
                return False
            numbers = [
                ({tp.partition for tp in h if tp.topic == left},
                 {tp.partition for tp in h if tp.topic == right})
                for h in held
            ]  # fmt: skip
            return all(mine_left == mine_right for mine_left, mine_right in numbers)

        first = open_consumer(group_id=group, topics=[left, right], co_partitioned=True)
        seen: list[Record] = []
        await poll_until([first], lambda: aligned([first]), seen)
        second = open_consumer(group_id=group, topics=[left, right], co_partitioned=True)
        await poll_until([first, second], lambda: aligned([first, second]), seen)
        third = open_consumer(group_id=group, topics=[left, right], co_partitioned=True)
        members = [first, second, third]
        await poll_until(members, lambda: aligned(members) and len(seen) >= 40, seen)
        await second.close()
        await poll_until([first, third], lambda: aligned([first, third]), seen)

        # Every record read, records of a partition in order (a rebalance may repeat some
        # from the committed offset, as in any group: the application's offsets decide).
        for topic in (left, right):
            for p in range(4):
                values = [int(r.value or b"") for r in seen if (r.topic, r.partition) == (topic, p)]
                assert sorted(set(values)) == list(range(p * 10, p * 10 + 5))

    async def test_a_co_partitioned_member_sought_back_reads_again_and_keeps_the_rest(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        left, right = await new_topic(partitions=2), await new_topic(partitions=2)
        await publish_values(event_log, left, key_for(0, 2), range(0, 20))
        await publish_values(event_log, right, key_for(1, 2), range(100, 110))
        consumer = open_consumer(group_id=unique("g"), topics=[left, right], co_partitioned=True)
        before = await read(consumer, 1, max_records=3)

        await consumer.seek({TopicPartition(left, 0): 5})
        after = await read(consumer, 15 + 10 - sum(r.topic == right for r in before))

        values = [int(r.value or b"") for r in after if r.topic == left]
        assert values == list(range(5, 20))
        assert [int(r.value or b"") for r in before + after if r.topic == right] == list(
            range(100, 110)
        )

    async def test_an_interleaved_member_reads_a_backlog_in_short_runs_of_each_partition(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic(partitions=2)
        # 1,200 records of 1 KB a partition, more than a megabyte even compressed.
        for p in range(2):
            key = key_for(p, 2)
            for n in range(1200):
                await event_log.publish(topic, key, os.urandom(1000))
                if n % 50 == 49:
                    await event_log.flush()  # record batches of 50 KB, as a live stream's
        consumer = open_consumer(group_id=unique("g"), topics=[topic], interleaved=True)

        # Polls smaller than the backlog: without interleaving, the first takes a thousand
        # records of one partition (memory: all it may; Kafka: librdkafka's 1 MiB fetch of
        # it). Interleaved, neither partition runs more than 500 records ahead.
        counts = [0, 0]
        ahead: list[int] = []
        deadline = time.monotonic() + SETTLE_S
        while sum(counts) < 2400:
            assert time.monotonic() < deadline, f"read {counts} of 1,200 each"
            for record in await consumer.poll(1000, 0.5):
                counts[record.partition] += 1
            ahead.append(abs(counts[0] - counts[1]))
        assert max(ahead) <= 500, ahead

    async def test_after_a_member_closes_the_other_member_gets_all_partitions(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, group = await new_topic(partitions=4), unique("g")
        everything = frozenset(TopicPartition(topic, p) for p in range(4))
        leaving, staying = (open_consumer(group_id=group, topics=[topic]) for _ in range(2))
        seen: list[Record] = []
        await poll_until(
            [leaving, staying], lambda: bool(leaving.assignment() and staying.assignment()), seen
        )

        await leaving.close()
        await poll_until([staying], lambda: staying.assignment() == everything, seen)
        keys = [f"sensor-{i}".encode() for i in range(20)]
        for key in keys:
            await event_log.publish(topic, key, b"v")
        await event_log.flush()
        await poll_until([staying], lambda: len(seen) >= 20, seen)

        assert sorted(r.key or b"" for r in seen) == sorted(keys)

    async def test_a_joining_member_takes_partitions_without_the_other_restarting_its_own(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        # Cooperative rebalancing: only the partitions that change owner move; the member
        # that keeps the rest is never asked where to start them again.
        topic, group = await new_topic(partitions=4), unique("g")
        everything = frozenset(TopicPartition(topic, p) for p in range(4))
        first_asked, second_asked = Recorder(), Recorder()
        first = open_consumer(group_id=group, topics=[topic], resolve_offsets=first_asked)
        seen: list[Record] = []
        await poll_until([first], lambda: first.assignment() == everything, seen)

        second = open_consumer(group_id=group, topics=[topic], resolve_offsets=second_asked)
        await poll_until(
            [first, second],
            lambda: (
                len(first.assignment()) == len(second.assignment()) == 2
                and first.assignment() | second.assignment() == everything
            ),
            seen,
        )

        assert first_asked.calls == [sorted(everything)]
        assert second_asked.calls == [sorted(second.assignment())]

    async def test_when_a_member_leaves_only_its_partitions_move(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, group = await new_topic(partitions=6), unique("g")
        everything = frozenset(TopicPartition(topic, p) for p in range(6))
        asked = [Recorder() for _ in range(3)]
        members = [
            open_consumer(group_id=group, topics=[topic], resolve_offsets=recorder)
            for recorder in asked
        ]
        seen: list[Record] = []
        await poll_until(members, lambda: all(len(m.assignment()) == 2 for m in members), seen)
        kept = [m.assignment() for m in members[:2]]
        gone = members[2].assignment()
        for recorder in asked:
            recorder.calls.clear()

        await members[2].close()
        await poll_until(
            members[:2],
            lambda: members[0].assignment() | members[1].assignment() == everything,
            seen,
        )

        for member, before in zip(members[:2], kept, strict=True):
            assert member.assignment() >= before
            assert len(member.assignment()) == 3
        moved = [tp for recorder in asked[:2] for call in recorder.calls for tp in call]
        assert sorted(moved) == sorted(gone)

    # -- readers and lag ------------------------------------------------------------------

    async def test_a_reader_reads_the_given_partitions_from_the_given_offsets(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic(partitions=2)
        await publish_values(event_log, topic, None, range(10))  # round robin / random
        ends = await event_log.end_offsets(topic)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        start = {tp0: min(2, ends[0]), tp1: 0}

        reader = open_consumer(group_id=unique("g"), start=start)
        records = await read(reader, ends[0] - start[tp0] + ends[1])

        assert reader.assignment() == frozenset({tp0, tp1})
        assert sorted((r.partition, r.offset) for r in records) == [
            (0, o) for o in range(start[tp0], ends[0])
        ] + [(1, o) for o in range(ends[1])]

    async def test_a_readers_commit_is_where_a_group_member_starts(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, group = await new_topic(), unique("g")
        await publish_values(event_log, topic, b"k", range(8))
        tp = TopicPartition(topic, 0)
        await open_consumer(group_id=group, start={tp: 0}).commit({tp: 5})

        records = await read(open_consumer(group_id=group, topics=[topic]), 3)

        assert [r.offset for r in records] == [5, 6, 7]

    async def test_lag_counts_the_records_left_and_reaches_zero(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        await publish_values(event_log, topic, b"k", range(10))
        reader = open_consumer(group_id=unique("g"), start={TopicPartition(topic, 0): 0})
        lag_before = await reader.lag()
        consumer = open_consumer(group_id=unique("g"), topics=[topic])

        await read(consumer, 10)

        assert lag_before == 10
        assert await consumer.lag() == 0

    async def test_lag_of_a_member_that_has_read_nothing_counts_from_where_it_starts(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, group = await new_topic(partitions=2), unique("g")
        await publish_values(event_log, topic, key_for(0, 2), range(6))
        read_out, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
        await open_consumer(group_id=group, start={read_out: 0}).commit({read_out: 6})
        consumer = open_consumer(group_id=group, topics=[topic])

        # Nothing to read: committed at the end of one partition, the other empty.
        assert await consumer.poll(10, 1.0) == []

        assert consumer.assignment() == frozenset({read_out, empty})
        assert await consumer.lag() == 0
        reader = open_consumer(group_id=unique("g"), start={read_out: 2, empty: 0})
        assert await reader.lag() == 4  # from its start offsets, read nothing yet

    async def test_only_partitions_read_to_their_end_are_caught_up(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic(partitions=2)
        busy, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
        await publish_values(event_log, topic, key_for(0, 2), range(10))
        consumer = open_consumer(group_id=unique("g"), topics=[topic])
        assert isinstance(consumer, CaughtUp)

        first = await read(consumer, 1, max_records=3)
        assert busy not in consumer.caught_up()  # records left to read

        seen = len(first) + len(await read(consumer, 10 - len(first)))
        deadline = time.monotonic() + SETTLE_S
        while consumer.caught_up() != {busy, empty}:  # Kafka: once a fetch told the ends
            assert time.monotonic() < deadline, consumer.caught_up()
            assert await consumer.poll(10, 0.2) == []
        await publish_values(event_log, topic, key_for(0, 2), range(3))
        await read(consumer, 1, max_records=1)

        assert seen == 10
        assert consumer.caught_up() == {empty}  # two of the new records left

    async def test_poll_returns_nothing_after_its_timeout_when_there_is_nothing_to_read(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        reader = open_consumer(
            group_id=unique("g"), start={TopicPartition(await new_topic(), 0): 0}
        )
        records = await asyncio.wait_for(reader.poll(10, 0.3), 5)

        assert records == []

    async def test_a_waiting_poll_returns_as_soon_as_a_record_arrives(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        reader = open_consumer(group_id=unique("g"), start={TopicPartition(topic, 0): 0})
        await reader.poll(10, 0.1)  # let the reader start fetching
        waiting = asyncio.create_task(reader.poll(10, 60))
        await asyncio.sleep(0.05)

        await event_log.publish(topic, b"k", b"wake up")
        await event_log.flush()
        # Far less than the poll's own 60 s timeout: it returned because a record came.
        records = await asyncio.wait_for(waiting, 10)

        assert [r.value for r in records] == [b"wake up"]

    # -- seek ------------------------------------------------------------------------------

    async def test_a_member_sought_back_reads_again_from_there_and_drops_what_it_had_fetched(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic(partitions=2)
        await publish_values(event_log, topic, key_for(0, 2), range(0, 20))
        await publish_values(event_log, topic, key_for(1, 2), range(100, 110))
        consumer = open_consumer(group_id=unique("g"), topics=[topic])
        # Small polls leave fetched records buffered in the client when it seeks.
        before = await read(consumer, 1, max_records=3)

        await consumer.seek({TopicPartition(topic, 0): 5})
        after = await read(consumer, 15 + 10 - sum(r.partition == 1 for r in before))

        values = [int(r.value or b"") for r in after if r.partition == 0]
        assert values == list(range(5, 20))
        assert [int(r.value or b"") for r in before + after if r.partition == 1] == list(
            range(100, 110)
        )

    async def test_a_reader_sought_back_reads_again_from_there(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        await publish_values(event_log, topic, b"k", range(10))
        tp = TopicPartition(topic, 0)
        reader = open_consumer(group_id=unique("g"), start={tp: 0})
        await read(reader, 10)

        await reader.seek({tp: 7})

        assert [r.offset for r in await read(reader, 3)] == [7, 8, 9]

    async def test_a_paused_member_sought_back_stays_paused_then_reads_from_there(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        await publish_values(event_log, topic, b"k", range(10))
        consumer = open_consumer(group_id=unique("g"), topics=[topic])
        await read(consumer, 10)
        await consumer.pause()

        await consumer.seek({TopicPartition(topic, 0): 2})
        while_paused = await consumer.poll(100, 0.3)
        await consumer.resume()

        assert while_paused == []
        assert [r.offset for r in await read(consumer, 8)] == list(range(2, 10))

    async def test_seeking_a_partition_not_assigned_changes_nothing(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, other = await new_topic(), await new_topic()
        await publish_values(event_log, topic, b"k", range(5))
        consumer = open_consumer(group_id=unique("g"), topics=[topic])
        first = await read(consumer, 2, max_records=2)

        await consumer.seek({TopicPartition(other, 0): 0})

        rest = await read(consumer, 5 - len(first))
        assert [r.offset for r in first + rest] == [0, 1, 2, 3, 4]

    # -- pause / resume -------------------------------------------------------------------

    async def test_a_paused_member_returns_nothing_then_resume_delivers_every_record_once(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic(partitions=2)
        await publish_values(event_log, topic, key_for(0, 2), range(0, 20))
        consumer = open_consumer(group_id=unique("g"), topics=[topic])
        # Small polls leave fetched records buffered in the client when it pauses.
        before = await read(consumer, 1, max_records=3)

        await consumer.pause()
        await publish_values(event_log, topic, key_for(0, 2), range(20, 30))
        await publish_values(event_log, topic, key_for(1, 2), range(100, 110))
        while_paused = [await consumer.poll(100, 0.3) for _ in range(4)]
        await consumer.resume()
        after = await read(consumer, 40 - len(before))

        assert while_paused == [[], [], [], []]
        by_partition: dict[int, list[int]] = {0: [], 1: []}
        for record in before + after:
            by_partition[record.partition].append(int(record.value or b""))
        assert by_partition == {0: list(range(30)), 1: list(range(100, 110))}

    async def test_a_paused_poll_waits_its_timeout(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic = await new_topic()
        await publish_values(event_log, topic, b"k", range(3))
        reader = open_consumer(group_id=unique("g"), start={TopicPartition(topic, 0): 0})
        await reader.pause()

        started = time.monotonic()
        records = await reader.poll(10, 0.5)
        waited = time.monotonic() - started
        await reader.resume()

        assert records == []
        assert waited >= 0.4
        assert [r.offset for r in await read(reader, 3)] == [0, 1, 2]

    async def test_partitions_assigned_while_paused_stay_paused_until_resume(
        self, event_log: EventLog, new_topic: NewTopic, open_consumer: OpenConsumer
    ) -> None:
        topic, group = await new_topic(partitions=2), unique("g")
        for partition in (0, 1):
            await publish_values(event_log, topic, key_for(partition, 2), range(5))
        first = open_consumer(group_id=group, topics=[topic])
        second = open_consumer(group_id=group, topics=[topic])
        await poll_until([first, second], lambda: len(second.assignment()) == 1, [])
        await second.pause()
        await second.close()

        await first.pause()
        for partition in (0, 1):
            await publish_values(event_log, topic, key_for(partition, 2), range(5, 8))
        deadline = time.monotonic() + SETTLE_S
        paused: list[Record] = []
        while len(first.assignment()) < 2:
            assert time.monotonic() < deadline, "the partition never moved"
            paused.extend(await first.poll(100, 0.3))
        paused.extend(await first.poll(100, 0.3))
        await first.resume()
        after: list[Record] = []
        while not all(any(r.partition == p and r.value == b"7" for r in after) for p in (0, 1)):
            assert time.monotonic() < deadline + SETTLE_S, "the records never came"
            after.extend(await first.poll(100, 0.3))

        assert paused == []
        # Whether `first` had read a partition's first five records before the rebalance is
        # a race; either way, after the resume each partition goes on from where the group
        # was, through the records published while paused: none skipped, none repeated.
        for p in (0, 1):
            values = [int(r.value or b"") for r in after if r.partition == p]
            assert values[0] in (0, 5)
            assert values == list(range(values[0], 8))


class TestInMemoryEventLog(EventLogContract):
    """The contract for the embedded in-memory log."""

    @pytest.fixture
    async def event_log(self) -> AsyncIterator[EventLog]:
        log = InMemoryEventLog()
        yield log
        await log.close()


@pytest.mark.integration
class TestKafkaEventLog(EventLogContract):
    """The contract for Kafka (needs PIPELINE_KAFKA__BOOTSTRAP_SERVERS)."""

    @pytest.fixture
    async def event_log(self, created_topics: list[str]) -> AsyncIterator[EventLog]:
        bootstrap = require_service(KAFKA)
        log = KafkaEventLog(
            bootstrap,
            client_id="contract-tests",
            # Fail records for a missing topic after 1 s rather than librdkafka's 30 s.
            producer_config={"topic.metadata.propagation.max.ms": "1000"},
            # Rebalance within seconds (the broker's minimum session timeout is 6 s).
            consumer_config={"session.timeout.ms": "6000", "heartbeat.interval.ms": "300"},
            timeout=20,
        )
        yield log
        await log.close()
        if created_topics:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for future in admin.delete_topics(created_topics, operation_timeout=20).values():
                await asyncio.wrap_future(future)
