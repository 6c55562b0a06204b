"""`InMemoryTransactionalCheckpoint`: Kafka authority on the in-memory log.

A batch's records (sink rows, changelog entries, dead letters) are appended and its offsets
committed in one synchronous step of the event loop, so a reader on that loop sees all of a
batch or nothing of it: what read_committed readers see on Kafka. Nothing is ever written
and then aborted, and a transaction is never left open, so what the in-memory log does not
model is the rest of Kafka's mechanics: readers held back at the first record of an open
transaction, the offsets Kafka's transaction markers take (offsets here stay contiguous),
and group generations (a member writes for the partitions it holds at the time of the
commit; those it gave up are reported in `Committed.fenced`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from pipeline.adapters.memory.log_consumer import InMemoryGroupConsumer
from pipeline.adapters.memory.log_state import LogState
from pipeline.application.errors import ConfigurationError, ProducerFenced
from pipeline.application.kafka_authority import (
    CHANGELOG_CONFIG,
    OutRecord,
    TopicSink,
    TransactionPlanner,
    changelog_topics,
    lost_partitions,
    owned_parts,
    transactional_id,
)
from pipeline.application.ports import EventLog, TopicPartition, TopicSpec
from pipeline.application.ports.checkpoint import CheckpointBatch, Committed
from pipeline.application.topic_names import dead_letter_topic


class InMemoryTransactionalCheckpoint:
    """A `CheckpointStore` under Kafka authority on `InMemoryEventLog` (see the module doc),
    bound to one member of a group; made by `InMemoryEventLog.transactional_checkpoint`.

    As on Kafka: the changelog topics are created on the first call (or `start`), which
    also fences an older checkpoint of the same group and member id (`ProducerFenced` from
    then on); partitions the member no longer holds are left out of a commit and returned
    in `Committed.fenced` with the group's committed offset."""

    def __init__(
        self,
        log: EventLog,
        state: LogState,
        consumer: InMemoryGroupConsumer,
        *,
        member_id: str,
        sinks: Mapping[str, TopicSink],
        steps: Sequence[str],
    ) -> None:
        self._log = log
        self._state = state
        self._consumer = consumer
        self._group_id = consumer.group_id
        self._transactional_id = transactional_id(self._group_id, member_id)
        self._sinks = dict(sinks)
        self._changelogs = changelog_topics(self._group_id, steps)
        self._planner = TransactionPlanner(sinks, self._changelogs)
        self._counts: dict[str, int] = {}
        self._epoch: int | None = None

    @property
    def changelog_topics(self) -> dict[str, str]:
        """The changelog topic of each stateful step."""
        return dict(self._changelogs)

    async def start(self) -> None:
        """Fence older checkpoints of this member, create the changelog topics (compacted,
        as many partitions as the largest source topic) and check the outputs exist."""
        if self._epoch is not None:
            return
        topics = self._state.topics
        for topic in self._consumer.topics:
            if topic not in topics:
                raise ConfigurationError(f"source topic {topic!r} does not exist")
            self._counts[topic] = len(topics[topic].partitions)
        partitions = max(self._counts.values())
        await self._log.ensure_topics(
            [
                TopicSpec(name=name, partitions=partitions, config=CHANGELOG_CONFIG)
                for name in self._changelogs.values()
            ]
        )
        for name in self._changelogs.values():
            count = len(topics[name].partitions)
            if count < partitions:
                raise ConfigurationError(
                    f"changelog topic {name!r} has {count} partitions; the job's sources "
                    f"have {partitions}"
                )
        outputs = {sink.topic for sink in self._sinks.values()}
        outputs |= {dead_letter_topic(topic) for topic in self._consumer.topics}
        missing = sorted(outputs - topics.keys())
        if missing:
            raise ConfigurationError(f"output topic(s) {missing} do not exist: create them")
        epochs = self._state.producer_epochs
        self._epoch = epochs[self._transactional_id] = epochs.get(self._transactional_id, 0) + 1

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """Append the batch's records and commit its offsets in one step of the loop."""
        self._check_group(batch.group_id)
        await self.start()
        encoded = await self._planner.encode(batch)
        # From here to the end nothing awaits: no other task sees a part of the batch.
        if self._state.producer_epochs.get(self._transactional_id) != self._epoch:
            raise ProducerFenced(
                f"{self._transactional_id} was fenced by a newer instance of this member"
            )
        owned = owned_parts(self._consumer.assignment(), self._counts)
        records, written = self._planner.records(batch, encoded, owned)
        for record in records:
            self._append(record)
        group = self._state.group(self._group_id)
        group.committed.update(self._planner.offsets(batch, owned))
        lost = lost_partitions(batch, owned)
        fenced = {tp: group.committed.get(tp, batch.start_offsets.get(tp, 0)) for tp in lost}
        return Committed(written=written, fenced=fenced)

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets of `partitions` (those never committed left out)."""
        self._check_group(group_id)
        committed = self._state.group(group_id).committed
        return {tp: committed[tp] for tp in partitions if tp in committed}

    async def load_state(
        self, group_id: str, parts: Sequence[int]
    ) -> dict[int, dict[str, list[tuple[bytes, bytes]]]]:
        """The state of source partitions `parts`: the latest value of every live key in
        their changelog partitions."""
        self._check_group(group_id)
        await self.start()
        state: dict[int, dict[str, list[tuple[bytes, bytes]]]] = {part: {} for part in parts}
        for step, topic in self._changelogs.items():
            partitions = self._state.topics[topic].partitions
            for part in parts:
                latest: dict[bytes, bytes] = {}
                for record in partitions[part].records:
                    if record.key is None:
                        continue
                    if record.value is None:
                        latest.pop(record.key, None)
                    else:
                        latest[record.key] = record.value
                if latest:
                    state[part][step] = list(latest.items())
        return state

    async def ping(self) -> None:
        """Always answers: the log is in this process."""
        await asyncio.sleep(0)

    async def close(self) -> None:
        """Nothing to release."""

    def _append(self, record: OutRecord) -> None:
        log = self._state.topics.get(record.topic)
        if log is None:
            raise ConfigurationError(f"topic {record.topic!r} does not exist")
        self._state.append(
            log,
            record.key,
            record.value,
            record.headers,
            record.timestamp_ms or None,
            partition=record.partition,
        )

    def _check_group(self, group_id: str) -> None:
        if group_id != self._group_id:
            raise ConfigurationError(
                f"this checkpoint commits for group {self._group_id!r}, not {group_id!r}"
            )
