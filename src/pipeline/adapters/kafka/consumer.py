"""Consumers of `KafkaEventLog`: `KafkaGroupConsumer` and `KafkaPartitionReader`.

librdkafka calls block, so every call on a consumer runs in that consumer's own single
worker thread: the event loop never blocks, calls on one consumer never overlap, and the
rebalance callbacks (which librdkafka runs inside `consume`) run in that thread too.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.adapters.kafka.config import CONFIGURATION_CODES, kafka_error_of, translate
from pipeline.adapters.kafka.lag import partitions_lag
from pipeline.adapters.kafka.logs import KafkaLogs, with_logs
from pipeline.adapters.kafka.messages import kafka_partitions, to_record
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import Record, TopicPartition

T = TypeVar("T")

_RETRY_COMMIT = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)
"""Commit errors that pass by themselves: a group changing generation, or its coordinator
moving to another broker (the one that led it was lost) and loading the group there. The
commit is retried until the consumer's timeout."""
_COMMIT_RETRY_S = 0.1
BATCH_LINGER_S = 0.002
"""Longest a poll whose first record it had to wait for waits for the rest of its burst; a
poll that finds records waiting returns them at once."""


class KafkaConsumerBase:
    """Polling, committing, lag and closing, shared by group members and readers."""

    def __init__(
        self, settings: dict[str, Any], description: str, timeout: float, logs: KafkaLogs
    ) -> None:
        self._description = description
        self._timeout = timeout
        self._logs = logs
        self._consumer = Consumer(with_logs(settings, logs))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=description)
        self._loop: asyncio.AbstractEventLoop | None = None
        # Replaced, never mutated: the worker thread swaps it, the loop thread reads it.
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._held: frozenset[TopicPartition] = frozenset()
        """Assigned partitions whose records must not be returned (yet)."""
        self._starts: dict[TopicPartition, int] = {}
        """Start offsets we chose, the position until the first record is consumed."""
        self._carry: list[Record] = []
        self._closed = False
        self._paused = False
        """Set by `pause`: every assigned partition (and any assigned later) is paused."""

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout` seconds for the first.

        If the awaiting task is cancelled, the records consumed meanwhile are kept and
        returned by the next poll, so cancelling never skips records. While paused, it
        waits `timeout` (serving the group: rebalances, max.poll.interval) and returns [].
        """
        if not 1 <= max_records <= 1_000_000:
            raise ValueError("max_records must be between 1 and 1,000,000")
        if self._closed:
            return []
        if self._carry and not self._paused:
            carried = self._take_carry(max_records)
            if carried:
                return carried
        await self._before_poll()
        future = self._submit(self._consume, max_records, timeout)
        try:
            records = await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._keep_for_next_poll)
            raise
        self._after_poll(records)
        if self._paused:
            # Fetched before the pause took effect: consumed from librdkafka's point of
            # view, so they are kept (in order) for the first poll after `resume`.
            self._carry.extend(records)
            return []
        return records

    async def pause(self) -> None:
        """Pause every assigned partition (and, from the rebalance callback, any assigned
        later) until `resume`; polls keep the member in its group and return []."""
        if self._closed or self._paused:
            return
        self._paused = True
        await self._submit(self._pause_resume, True)

    async def resume(self) -> None:
        """Resume the assigned partitions (except those still waiting for their start
        offsets); records fetched before the pause come first."""
        if self._closed or not self._paused:
            return
        self._paused = False
        await self._submit(self._pause_resume, False)

    async def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Read the given assigned partitions on from the given offsets; records of them
        fetched before (carried or in librdkafka's queues) are dropped. Partitions not
        assigned, or still waiting for their start offsets, are left alone."""
        if self._closed:
            return
        wanted = {tp: o for tp, o in offsets.items() if tp in self._assigned - self._held}
        if not wanted:
            return
        await self._submit(self._seek, wanted)
        self._carry = [r for r in self._carry if r.topic_partition not in wanted]

    def _reassign(
        self, plain: list[KafkaTopicPartition], placed: list[KafkaTopicPartition]
    ) -> None:
        """Worker thread: give the partitions of `plain` a fresh fetch start at `placed`'s
        offsets, leaving the others as they are."""
        self._consumer.incremental_unassign(plain)
        self._consumer.incremental_assign(placed)

    def _seek(self, offsets: dict[TopicPartition, int]) -> None:
        """Worker thread. Re-assigning (rather than `Consumer.seek`, which fails on a
        partition whose fetcher has not started yet) starts each partition's fetch afresh at
        exactly its offset; messages fetched under the old assignment are discarded."""
        offsets = {tp: o for tp, o in offsets.items() if tp in self._assigned}
        if not offsets:
            return
        plain = [KafkaTopicPartition(tp.topic, tp.partition) for tp in offsets]
        placed = kafka_partitions(offsets)
        try:
            self._reassign(plain, placed)
            if self._paused:
                self._consumer.pause(placed)
            else:
                self._consumer.resume(placed)
        except KafkaException as exc:
            raise translate(exc, f"{self._description} cannot seek") from exc
        self._starts.update(offsets)

    def _pause_resume(self, pause: bool) -> None:
        """Worker thread: (un)pause the partitions assigned now."""
        readable = self._assigned if pause else self._assigned - self._held
        partitions = [KafkaTopicPartition(tp.topic, tp.partition) for tp in sorted(readable)]
        if not partitions:
            return
        try:
            if pause:
                self._consumer.pause(partitions)
            else:
                self._consumer.resume(partitions)
        except KafkaException as exc:
            action = "pause" if pause else "resume"
            raise translate(exc, f"{self._description} cannot {action} partitions") from exc

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit, for the group, the next offset to read in each partition (synchronously)."""
        if self._closed:
            raise RuntimeError(f"{self._description} is closed: it cannot commit")
        if offsets:
            await self._submit(self._commit, dict(offsets))

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions currently assigned to this consumer."""
        return self._assigned

    async def lag(self) -> int:
        """Records left in the assigned partitions: high watermark - position, where the
        position of a partition not read yet is its start offset (chosen, committed, or
        the low watermark)."""
        if self._closed or not self._assigned:
            return 0
        # Records fetched during a pause and kept for the next polls are past the position
        # but not handled yet: they are lag too.
        return await self._submit(self._lag) + len(self._carry)

    def caught_up(self) -> frozenset[TopicPartition]:
        """The assigned partitions known to have nothing left to read: the position (the
        start offset until a record is read) has reached the high watermark of the last
        fetch response. From librdkafka's cached figures, in any thread: no broker call
        (about 2 µs a partition, where asking the broker takes a round trip each). Not
        caught up: a partition no fetch has answered for yet, one held back, one with
        records fetched and kept for the next poll."""
        readable = self._assigned - self._held
        if self._closed or not readable:
            return frozenset()
        carried = {r.topic_partition for r in self._carry}
        asked = [KafkaTopicPartition(tp.topic, tp.partition) for tp in readable - carried]
        consumer = self._consumer
        out: list[TopicPartition] = []
        try:
            for at in consumer.position(asked):
                low, high = consumer.get_watermark_offsets(at, cached=True)
                tp = TopicPartition(at.topic, at.partition)
                position = at.offset if at.offset >= 0 else self._starts.get(tp, low)
                if high >= 0 and position >= high:
                    out.append(tp)
        except (KafkaException, RuntimeError):
            return frozenset()  # closing, or nothing known: nobody idles
        return frozenset(out)

    async def close(self) -> None:
        """Close the consumer: leave the group (its partitions move to the other members)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._submit(self._consumer.close)
        except KafkaException as exc:
            raise translate(exc, f"cannot close {self._description}") from exc
        finally:
            self._assigned = frozenset()
            self._executor.shutdown(wait=False)

    async def _before_poll(self) -> None:
        """Hook run on the event loop before each consume."""

    def _after_poll(self, records: list[Record]) -> None:
        """Hook run on the event loop with each consumed batch."""

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = self._loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _take_carry(self, max_records: int) -> list[Record]:
        readable = self._assigned - self._held
        carry = [r for r in self._carry if r.topic_partition in readable]
        self._carry = carry[max_records:]
        return carry[:max_records]

    def _keep_for_next_poll(self, future: asyncio.Future[list[Record]]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._carry.extend(future.result())

    def _consume(self, max_records: int, timeout: float) -> list[Record]:
        """Worker thread: what is already fetched, else wait for the first record and take
        the rest of its burst (at most `BATCH_LINGER_S` more)."""
        consumer = self._consumer
        deadline = time.monotonic() + timeout
        try:
            # Records already waiting go at once, however few: holding them back to fill
            # the batch would only add to their latency. Batches still grow with the load,
            # from what arrives while the previous batch is prepared and made durable.
            records = self._records(consumer.consume(max_records, 0))
            while not records:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                first = consumer.poll(remaining)
                if first is None:
                    break
                batch = [first]
                if max_records > 1:
                    linger = min(BATCH_LINGER_S, max(0.0, deadline - time.monotonic()))
                    batch.extend(consumer.consume(max_records - 1, linger))
                records = self._records(batch)
        except KafkaException as exc:
            raise translate(exc, f"{self._description} cannot consume") from exc
        except RuntimeError:
            if self._closed:  # closed while this poll waited in the queue
                return []
            raise
        return records

    def _records(self, messages: Sequence[Message]) -> list[Record]:
        # librdkafka already drops fetched messages of partitions revoked during the
        # call; checking the assignment as the callbacks left it is the safety net.
        # (topic, partition) pairs: a TopicPartition made and hashed per record cost ~1 µs.
        readable = {(tp.topic, tp.partition) for tp in self._assigned - self._held}
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                self._message_error(error)
                continue
            record = to_record(message)
            if (record.topic, record.partition) in readable:
                records.append(record)
        return records

    def _message_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal() or error.code() == KafkaError._FATAL:
            # The consumer cannot go on. librdkafka's only fatal consumer error is a static
            # member fenced by another member using the same group.instance.id.
            raise ConfigurationError(
                f"{self._description} stopped: {error.str()} (give each worker its own "
                "PIPELINE_WORKER__INSTANCE_ID)"
            )
        if error.code() in CONFIGURATION_CODES:
            # Not authorized (an ACL): retrying cannot help.
            raise ConfigurationError(
                f"{self._description} was refused by Kafka: {error.str()}; grant this "
                "principal the ACLs `pipeline acls` lists"
            )
        # librdkafka retries everything else by itself (unreachable broker, topic not
        # created yet, …): worth a log line (once, not once per poll), not a failed poll.
        self._logs.error(error)

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Worker thread: commit synchronously, retrying while the group rebalances or its
        coordinator moves.

        A commit made while the group moves to a new generation is refused; the member
        rejoins in librdkafka's background thread (cooperative rebalancing needs no poll
        for that), and the partitions are still ours until the next poll revokes them, so
        committing again shortly after is right, and keeps their new owner from re-reading.
        """
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                results = self._consumer.commit(
                    offsets=kafka_partitions(offsets), asynchronous=False
                )
                break
            except KafkaException as exc:
                error = kafka_error_of(exc)
                passing = error is not None and error.code() in _RETRY_COMMIT
                if not passing or time.monotonic() > deadline:
                    raise translate(exc, f"{self._description} cannot commit offsets") from exc
            time.sleep(_COMMIT_RETRY_S)
        failed = [f"{r.topic}[{r.partition}]: {r.error}" for r in results or () if r.error]
        if failed:
            raise BrokerUnavailable(f"{self._description} cannot commit " + ", ".join(failed))

    def _lag(self) -> int:
        """Worker thread: the lag of the assigned partitions."""
        try:
            return partitions_lag(
                self._consumer, sorted(self._assigned), self._starts, self._timeout
            )
        except KafkaException as exc:
            raise translate(exc, f"{self._description} cannot read its lag") from exc


class KafkaPartitionReader(KafkaConsumerBase):
    """Reads given partitions from given offsets with `assign()`, outside group management.

    Commits go to the configured group.id, whose members are not disturbed.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        start: Mapping[TopicPartition, int],
        timeout: float,
        logs: KafkaLogs,
    ) -> None:
        super().__init__(settings, f"reader of group {settings['group.id']!r}", timeout, logs)
        self._starts = dict(start)
        try:
            self._consumer.assign(kafka_partitions(start))
        except KafkaException as exc:
            raise translate(exc, f"cannot assign partitions to {self._description}") from exc
        self._assigned = frozenset(start)
