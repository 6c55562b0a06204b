"""The state behind `InMemoryEventLog`: partitions of records, and consumer groups.

Kept apart from the log and its consumers so both can share it without importing each
other. Everything here runs on one event loop; nothing is locked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.adapters.memory.partitioner import partition_for_key
from pipeline.application.ports import Record, TopicPartition


class Waiters:
    """Futures of polls waiting for something to change; `wake` resolves them all."""

    __slots__ = ("futures",)

    def __init__(self) -> None:
        self.futures: set[asyncio.Future[None]] = set()

    def wake(self) -> None:
        """Resolve every waiting future (cheap when nobody waits, as on most publishes)."""
        if self.futures:
            for future in self.futures:
                if not future.done():
                    future.set_result(None)
            self.futures.clear()


class PartitionLog:
    """One partition: records at offsets 0..n-1 (nothing is ever deleted)."""

    __slots__ = ("records", "waiters")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.waiters = Waiters()


@dataclass(slots=True)
class TopicLog:
    """A topic's partitions, and the round-robin cursor for records without a key."""

    name: str
    partitions: list[PartitionLog]
    config: dict[str, str]
    next_unkeyed: int = 0


@dataclass(slots=True, eq=False)
class GroupMember:
    """What the group coordinator knows of a member: its id and subscription."""

    member_id: int
    topics: frozenset[str]
    co_partitioned: bool = False
    """Asked for the range assignor (partition p of every topic to one member)."""


@dataclass(slots=True, eq=False)
class ConsumerGroup:
    """A consumer group: committed offsets, members, and who owns which partition.

    `targets` is the latest computed assignment; `owners` is who actually holds each
    partition. A member picks up a target partition only once its previous owner has
    released it at its own next poll (or by closing), as in Kafka's cooperative protocol,
    so two members never read one partition at the same time.
    """

    group_id: str
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    members: list[GroupMember] = field(default_factory=list)
    targets: dict[int, frozenset[TopicPartition]] = field(default_factory=dict)
    owners: dict[TopicPartition, int] = field(default_factory=dict)
    version: int = 0
    """Bumped on every change a member must react to at its next poll."""
    waiters: Waiters = field(default_factory=Waiters)

    def changed(self) -> None:
        """Make members re-check their assignment, waking those waiting in poll."""
        self.version += 1
        self.waiters.wake()

    def release(self, member_id: int, partitions: Iterable[TopicPartition]) -> None:
        """`member_id` stops reading `partitions`; their new owners may take them."""
        for tp in partitions:
            if self.owners.get(tp) == member_id:
                del self.owners[tp]
        self.changed()

    def acquire(self, member_id: int, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        """Take the given partitions that nobody holds; return those taken, sorted."""
        taken = sorted(tp for tp in partitions if tp not in self.owners)
        for tp in taken:
            self.owners[tp] = member_id
        return taken

    def rebalance(self, topics: dict[str, TopicLog]) -> None:
        """Recompute the targets like Kafka's cooperative-sticky assignor, topic by topic:
        balanced (members' shares differ by one at most) and sticky (a member keeps the
        partitions it has, up to its share; only the others move).

        The members holding the most get the larger shares; partitions left over go, lowest
        first, to the members below their share, in join order. A group whose members asked
        for co-partitioning is assigned like Kafka's range assignor instead."""
        targets: dict[int, set[TopicPartition]] = {m.member_id: set() for m in self.members}
        subscribed = sorted({t for m in self.members for t in m.topics})
        ranges = any(m.co_partitioned for m in self.members)
        for name in subscribed:
            topic = topics.get(name)
            eligible = [m.member_id for m in self.members if name in m.topics]
            if topic is None or not eligible:
                continue
            partitions = [TopicPartition(name, p) for p in range(len(topic.partitions))]
            if ranges:
                # Like Kafka's range assignor: members by id, each a contiguous run of
                # partitions, the first ones one more; the same for every topic, so
                # partition p of topics of equal size goes to one member.
                share, extra = divmod(len(partitions), len(eligible))
                start = 0
                for i, member in enumerate(sorted(eligible)):
                    end = start + share + (1 if i < extra else 0)
                    targets[member].update(partitions[start:end])
                    start = end
                continue
            held = {
                member: sorted(tp for tp in self.targets.get(member, ()) if tp.topic == name)
                for member in eligible
            }
            share, extra = divmod(len(partitions), len(eligible))
            by_holding = sorted(eligible, key=lambda member: -len(held[member]))
            quota = {member: share + (1 if i < extra else 0) for i, member in enumerate(by_holding)}
            for member in eligible:
                targets[member].update(held[member][: quota[member]])
            taken = {tp for member in eligible for tp in targets[member]}
            free = iter(tp for tp in partitions if tp not in taken)
            for member in eligible:
                mine = sum(1 for tp in targets[member] if tp.topic == name)
                targets[member].update(next(free) for _ in range(quota[member] - mine))
        self.targets = {member_id: frozenset(tps) for member_id, tps in targets.items()}
        self.changed()


class LogState:
    """All topics and consumer groups of one in-memory log."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicLog] = {}
        self.groups: dict[str, ConsumerGroup] = {}
        self.producer_epochs: dict[str, int] = {}
        """The epoch of each transactional.id: a newer producer with the id fences the older."""
        self._next_member_id = 0

    def append(
        self,
        log: TopicLog,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
        *,
        partition: int | None = None,
    ) -> None:
        """Append one record to `log`, in `partition` or where Kafka's partitioner puts its
        key (round-robin without a key), and wake the polls waiting for it."""
        partitions = log.partitions
        if partition is not None:
            number = partition
        elif key is None:
            number = log.next_unkeyed % len(partitions)
            log.next_unkeyed = number + 1
        else:
            number = partition_for_key(key, len(partitions))
        records = partitions[number].records
        records.append(
            Record(
                topic=log.name,
                partition=number,
                offset=len(records),
                key=key,
                value=value,
                timestamp_ms=time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms,
                headers=tuple(headers),
            )
        )
        partitions[number].waiters.wake()

    def partition(self, tp: TopicPartition) -> PartitionLog | None:
        """The partition's log, or None if the topic or partition does not exist."""
        topic = self.topics.get(tp.topic)
        if topic is None or not 0 <= tp.partition < len(topic.partitions):
            return None
        return topic.partitions[tp.partition]

    def end_offset(self, tp: TopicPartition) -> int:
        """The offset the next record of the partition will get (0 if it does not exist)."""
        partition = self.partition(tp)
        return 0 if partition is None else len(partition.records)

    def start_offset(self, tp: TopicPartition, *candidates: int | None) -> int:
        """The first valid offset among `candidates`, else the earliest (0).

        An offset past the end is out of range and, as with Kafka's
        `auto.offset.reset=earliest`, falls back to the beginning.
        """
        end = self.end_offset(tp)
        for offset in candidates:
            if offset is not None:
                return offset if 0 <= offset <= end else 0
        return 0

    def group(self, group_id: str) -> ConsumerGroup:
        """The group `group_id`, created empty on first use."""
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = ConsumerGroup(group_id)
        return group

    def join(
        self, group_id: str, topics: Sequence[str], *, co_partitioned: bool = False
    ) -> tuple[ConsumerGroup, int]:
        """Add a member subscribed to `topics` to the group and rebalance it."""
        group = self.group(group_id)
        self._next_member_id += 1
        member = GroupMember(self._next_member_id, frozenset(topics), co_partitioned)
        group.members.append(member)
        group.rebalance(self.topics)
        return group, self._next_member_id

    def leave(self, group: ConsumerGroup, member_id: int) -> None:
        """Remove a member, release what it holds, and rebalance the rest."""
        group.members = [m for m in group.members if m.member_id != member_id]
        group.release(member_id, [tp for tp, owner in group.owners.items() if owner == member_id])
        group.rebalance(self.topics)

    def topics_deleted(self, names: set[str]) -> None:
        """Forget the offsets groups committed on the deleted topics `names` and rebalance
        the groups subscribed to them, as Kafka does."""
        for group in self.groups.values():
            group.committed = {
                tp: offset for tp, offset in group.committed.items() if tp.topic not in names
            }
            if any(m.topics & names for m in group.members):
                group.rebalance(self.topics)

    def topics_created(self, names: Iterable[str]) -> None:
        """Rebalance the groups subscribed to new topics, as a metadata refresh would."""
        created = set(names)
        for group in self.groups.values():
            if any(m.topics & created for m in group.members):
                group.rebalance(self.topics)
