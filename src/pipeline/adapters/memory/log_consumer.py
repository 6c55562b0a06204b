"""Consumers of `InMemoryEventLog`: group members and manual readers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from pipeline.adapters.memory.log_state import ConsumerGroup, LogState, Waiters
from pipeline.application.ports import OffsetResolver, Record, TopicPartition

INTERLEAVED_RUN = 500
"""Most records an interleaved consumer takes from one partition before the next."""


class _InMemoryConsumerBase:
    """Positions over assigned partitions, fetching, waiting, committing and lag."""

    def __init__(self, state: LogState, group: ConsumerGroup) -> None:
        self._state = state
        self._group = group
        self._positions: dict[TopicPartition, int] = {}
        self._order: list[TopicPartition] = []
        self._next_first = 0
        self._run: int | None = None
        """Most records taken from one partition before the next is visited (None: all)."""
        self._closed = False
        self._paused = False
        self._wakeup: asyncio.Future[None] | None = None

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout` seconds for the first.

        Returns an empty list on timeout, once the consumer is closed, and while it is
        paused (group changes are still applied).
        """
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._closed:
            await self._before_fetch()
            records = self._fetch(max_records)
            if records:
                return records
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closed:
                break
            await self._wait(loop, remaining)
        return []

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record, for the group, the next offset to read in each partition."""
        for tp, offset in offsets.items():
            if offset < 0:
                raise ValueError(f"cannot commit negative offset {offset} for {tp}")
        self._group.committed.update(offsets)

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions currently assigned to this consumer."""
        return frozenset(self._order)

    async def lag(self) -> int:
        """Records left to read in the assigned partitions (end offset - position)."""
        committed = self._group.committed
        total = 0
        for tp in self._order:
            position = self._positions.get(tp)
            if position is None:
                position = self._state.start_offset(tp, committed.get(tp))
            total += max(0, self._state.end_offset(tp) - position)
        return total

    def caught_up(self) -> frozenset[TopicPartition]:
        """The assigned partitions whose position has reached their end offset (the log's
        end is always known here: no fetch is awaited)."""
        end = self._state.end_offset
        return frozenset(tp for tp, at in self._positions.items() if at >= end(tp))

    async def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Read the given assigned partitions on from the given offsets (out of range: from
        the beginning, as Kafka's `auto.offset.reset=earliest`); nothing is buffered here."""
        for tp, offset in offsets.items():
            if tp in self._positions:
                self._positions[tp] = self._state.start_offset(tp, offset)

    async def pause(self) -> None:
        """Return no records, from any partition, until `resume`; positions stay put."""
        self._paused = True

    async def resume(self) -> None:
        """Return records again from the positions held while paused."""
        self._paused = False

    async def _before_fetch(self) -> None:
        """Hook run at the start of every fetch attempt (group members rebalance here)."""

    def _set_order(self) -> None:
        self._order = sorted(self._positions)

    def _fetch(self, max_records: int) -> list[Record]:
        """Take records from the assigned partitions, starting one partition further on
        each call so a busy partition cannot starve the others."""
        order = self._order
        # Paused, nothing is taken, so positions stay where they were: a partition assigned
        # meanwhile is paused too, and resume reads on in order with nothing buffered.
        if not order or self._paused:
            return []
        first = self._next_first % len(order)
        self._next_first = first + 1
        out: list[Record] = []
        taking = True
        while taking and len(out) < max_records:
            taking = False  # another round only while some partition gave a full run
            for tp in order[first:] + order[:first]:
                partition = self._state.partition(tp)
                if partition is None:
                    continue
                position = self._positions[tp]
                if position < len(partition.records):
                    room = max_records - len(out)
                    take = room if self._run is None else min(room, self._run)
                    chunk = partition.records[position : position + take]
                    out.extend(chunk)
                    self._positions[tp] = position + len(chunk)
                    taking = taking or len(chunk) == self._run
                    if len(out) >= max_records:
                        break
        return out

    def _watched(self) -> Iterable[Waiters]:
        for tp in self._order:
            partition = self._state.partition(tp)
            if partition is not None:
                yield partition.waiters

    async def _wait(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        """Sleep until a watched partition gets a record, the group changes, or timeout."""
        future: asyncio.Future[None] = loop.create_future()
        watched = list(self._watched())
        for waiters in watched:
            waiters.futures.add(future)
        timer = loop.call_later(delay, _resolve, future)
        self._wakeup = future
        try:
            await future
        finally:
            timer.cancel()
            self._wakeup = None
            for waiters in watched:
                waiters.futures.discard(future)

    def _interrupt(self) -> None:
        if self._wakeup is not None:
            _resolve(self._wakeup)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class InMemoryGroupConsumer(_InMemoryConsumerBase):
    """A member of an in-memory consumer group (what `InMemoryEventLog.consumer` returns).

    Assignment changes take effect at this member's next poll, as in Kafka: it releases
    revoked partitions, then takes newly assigned ones that their previous owners have
    released, asking `resolve_offsets` where to start in them (else the group's committed
    offset, else the beginning). Do not run two polls of one consumer concurrently.
    """

    def __init__(
        self,
        state: LogState,
        group_id: str,
        topics: Sequence[str],
        resolve_offsets: OffsetResolver | None,
        *,
        co_partitioned: bool = False,
        interleaved: bool = False,
    ) -> None:
        group, member_id = state.join(group_id, topics, co_partitioned=co_partitioned)
        super().__init__(state, group)
        if interleaved:
            self._run = INTERLEAVED_RUN
        self.group_id = group_id
        self.topics = tuple(topics)
        """The topics subscribed to."""
        self._member_id = member_id
        self._resolve_offsets = resolve_offsets
        self._seen_version = -1

    async def close(self) -> None:
        """Leave the group; the remaining members share its partitions at their next poll."""
        if self._closed:
            return
        self._closed = True
        self._positions.clear()
        self._set_order()
        self._state.leave(self._group, self._member_id)
        self._interrupt()

    def _watched(self) -> Iterable[Waiters]:
        yield self._group.waiters
        yield from super()._watched()

    async def _before_fetch(self) -> None:
        """Apply the group's latest assignment: release revoked partitions, take new ones."""
        group = self._group
        if self._seen_version == group.version:
            return
        self._seen_version = group.version
        target = group.targets.get(self._member_id, frozenset())
        revoked = [tp for tp in self._positions if tp not in target]
        if revoked:
            for tp in revoked:
                del self._positions[tp]
            self._set_order()
            group.release(self._member_id, revoked)
        added = group.acquire(self._member_id, target.difference(self._positions))
        if added:
            await self._start(added)

    async def _start(self, added: list[TopicPartition]) -> None:
        resolved: Mapping[TopicPartition, int] = {}
        if self._resolve_offsets is not None:
            try:
                resolved = await self._resolve_offsets(added)
            except BaseException:
                # Give the partitions back so the next poll resolves them again rather
                # than reading from a position nobody chose.
                self._group.release(self._member_id, added)
                raise
        if self._closed:
            return
        committed = self._group.committed
        for tp in added:
            if self._group.owners.get(tp) == self._member_id:
                self._positions[tp] = self._state.start_offset(
                    tp, resolved.get(tp), committed.get(tp)
                )
        self._set_order()


class InMemoryLogReader(_InMemoryConsumerBase):
    """Reads given partitions from given offsets, outside group management.

    Commits still go to `group_id`'s committed offsets, like a Kafka consumer with a
    group.id that uses `assign()` instead of `subscribe()`.
    """

    def __init__(self, state: LogState, group_id: str, start: Mapping[TopicPartition, int]) -> None:
        super().__init__(state, state.group(group_id))
        self._positions = {tp: state.start_offset(tp, offset) for tp, offset in start.items()}
        self._set_order()

    async def close(self) -> None:
        """Stop reading; a waiting poll returns at once."""
        self._closed = True
        self._interrupt()
