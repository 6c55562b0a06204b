"""`KafkaGroupConsumer`: a member of a Kafka consumer group, with offsets chosen by the app."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.adapters.kafka.config import translate
from pipeline.adapters.kafka.consumer import KafkaConsumerBase
from pipeline.adapters.kafka.logs import KafkaLogs
from pipeline.application.errors import TransientError
from pipeline.application.ports import OffsetResolver, Record, TopicPartition


class KafkaGroupConsumer(KafkaConsumerBase):
    """A member of consumer group `group.id`, subscribed to topics (cooperative-sticky, or
    range when asked for co-partitioning: then every rebalance is eager, passing the whole
    assignment, and every change of it re-assigns it whole).

    On every assignment librdkafka calls `_on_assign` inside `consume`, in the worker
    thread; it runs `resolve_offsets` on the event loop and waits for the answer, then
    assigns the partitions at those offsets (the others start at the group's committed
    offset, else the earliest). If `resolve_offsets` fails, the partitions are assigned
    paused, the error is raised by that poll, and the next poll resolves them again
    before any of their records is read.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        topics: Sequence[str],
        resolve_offsets: OffsetResolver | None,
        timeout: float,
        logs: KafkaLogs,
    ) -> None:
        super().__init__(settings, f"member of group {settings['group.id']!r}", timeout, logs)
        self.group_id: str = settings["group.id"]
        self.topics = tuple(topics)
        """The topics subscribed to."""
        self.revocations = 0
        """Rebalance callbacks that took partitions away (revoked or lost) so far."""
        self._resolve_offsets = resolve_offsets
        self._eager = settings.get("partition.assignment.strategy") == "range"
        self._assign_error: BaseException | None = None
        try:
            self._consumer.subscribe(
                list(topics),
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
        except KafkaException as exc:
            raise translate(exc, f"{self._description} cannot subscribe to {topics}") from exc

    def group_metadata(self) -> object:
        """The member's current group metadata (group id, generation, member id), which a
        transactional producer sends with the offsets it commits so that the broker refuses
        them once the group has moved on without this member.

        Unlike the other librdkafka calls this one may run in any thread: librdkafka answers
        it from its own thread. A generation read here was joined after the rebalance
        callbacks handed back (and counted in `revocations`) every partition it took from
        this member."""
        try:
            return self._consumer.consumer_group_metadata()
        except KafkaException as exc:
            raise translate(exc, f"{self._description} has no group metadata") from exc

    async def _before_poll(self) -> None:
        """Resolve again the partitions whose resolution failed, then un-hold them.

        A failure is kept and raised after this poll's consume, never instead of it: only
        consume() keeps the member in its group (max.poll.interval.ms), and a database
        outage must not expel every member still waiting for its start offsets. While
        paused nothing is resolved (the worker is waiting for that same database)."""
        if not self._held or self._resolve_offsets is None or self._paused:
            return
        partitions = sorted(self._held)
        try:
            resolved = await self._resolve_offsets(partitions)
        except Exception as exc:  # noqa: BLE001 - raised by _after_poll, after consume()
            self._assign_error = self._assign_error or exc
            return
        await self._submit(self._restart, partitions, resolved)

    def _after_poll(self, records: list[Record]) -> None:
        """Raise a failure of `resolve_offsets`, keeping the batch for the next poll."""
        error, self._assign_error = self._assign_error, None
        if error is not None:
            self._carry.extend(records)
            raise error

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        # Worker thread, inside consume(): cooperative-sticky passes only new partitions.
        added = [TopicPartition(p.topic, p.partition) for p in partitions]
        resolved: Mapping[TopicPartition, int] = {}
        if added and self._resolve_offsets is not None:
            try:
                resolved = self._resolve_on_loop(added)
            except Exception as exc:  # noqa: BLE001 - any failure is the app's to see
                # Assign them paused: reading from the committed offset instead of the
                # offsets the application keeps could skip or repeat records.
                self._assign(consumer, partitions)
                consumer.pause(partitions)
                self._held = self._held | frozenset(added)
                self._assigned = self._assigned | frozenset(added)
                self._assign_error = exc
                return
        placed = []
        for tp in added:
            offset = resolved.get(tp)
            if offset is None:
                offset = OFFSET_INVALID  # the group's committed offset, else earliest
            else:
                self._starts[tp] = offset
            placed.append(KafkaTopicPartition(tp.topic, tp.partition, offset))
        self._assign(consumer, placed)
        if self._paused:
            # Assigned while the worker waits for its dependency: paused like the others.
            consumer.pause(placed)
        else:
            # librdkafka keeps a partition's pause flag across unassign and assign: one
            # paused here before and revoked meanwhile would otherwise never be read again.
            consumer.resume(placed)
        self._assigned = self._assigned | frozenset(added)

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        # Worker thread, inside consume() or close(); also serves on_lost.
        revoked = frozenset(TopicPartition(p.topic, p.partition) for p in partitions)
        self._assigned = self._assigned - revoked
        self.revocations += 1
        self._held = self._held - revoked
        for tp in revoked:
            self._starts.pop(tp, None)
        if self._eager:
            consumer.unassign()
        else:
            consumer.incremental_unassign(partitions)

    def _assign(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        # Worker thread, in the rebalance callback: an eager rebalance passes (and must be
        # given back) the whole assignment, a cooperative one only what it adds.
        if self._eager:
            consumer.assign(partitions)
        else:
            consumer.incremental_assign(partitions)

    def _reassign(
        self, plain: list[KafkaTopicPartition], placed: list[KafkaTopicPartition]
    ) -> None:
        # Worker thread. Under the eager protocol an assignment is only ever changed whole:
        # the others go on from their position (after the last record handed out, carried
        # ones included), or from where they were placed if nothing was read yet.
        if not self._eager:
            super()._reassign(plain, placed)
            return
        moved = {(p.topic, p.partition): p for p in placed}
        others = [
            KafkaTopicPartition(tp.topic, tp.partition)
            for tp in self._assigned
            if (tp.topic, tp.partition) not in moved
        ]
        whole = list(moved.values())
        for p in self._consumer.position(others) if others else []:
            start = self._starts.get(TopicPartition(p.topic, p.partition), OFFSET_INVALID)
            whole.append(
                KafkaTopicPartition(p.topic, p.partition, p.offset if p.offset >= 0 else start)
            )
        self._consumer.assign(whole)

    def _resolve_on_loop(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        loop, resolver = self._loop, self._resolve_offsets
        if loop is None or loop.is_closed() or resolver is None:
            raise RuntimeError("no running event loop to resolve start offsets on")

        async def resolve() -> Mapping[TopicPartition, int]:
            return await resolver(partitions)

        coroutine = resolve()
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:
            coroutine.close()
            raise
        try:
            return future.result(self._timeout)
        except TimeoutError as exc:
            future.cancel()
            # E.g. the end offsets of partitions whose leader's broker just died: transient,
            # so the worker retries the assignment instead of stopping.
            raise TransientError(
                f"{self._description}: the start offsets of {len(partitions)} newly assigned "
                f"partitions were not resolved within {self._timeout:.0f}s"
            ) from exc

    def _restart(
        self, partitions: list[TopicPartition], resolved: Mapping[TopicPartition, int]
    ) -> None:
        # Worker thread. Re-assigning (rather than seeking) gives each partition a fresh
        # fetch start at exactly the resolved offset.
        still_held = [tp for tp in partitions if tp in self._held]
        if not still_held:
            return
        plain = [KafkaTopicPartition(tp.topic, tp.partition) for tp in still_held]
        placed = [
            KafkaTopicPartition(tp.topic, tp.partition, resolved.get(tp, OFFSET_INVALID))
            for tp in still_held
        ]
        try:
            self._reassign(plain, placed)
            # Paused by `pause` meanwhile: they stay paused until `resume`.
            if self._paused:
                self._consumer.pause(placed)
            else:
                self._consumer.resume(placed)
        except KafkaException as exc:
            raise translate(exc, f"{self._description} cannot restart partitions") from exc
        for tp in still_held:
            if tp in resolved:
                self._starts[tp] = resolved[tp]
        self._held = self._held - frozenset(still_held)
