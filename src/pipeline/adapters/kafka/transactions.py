"""`KafkaTransactionalCheckpoint`: the checkpoint of a job under Kafka authority
(Kafka to Kafka, exactly once, as Kafka Streams' exactly_once_v2).

One batch is one Kafka transaction of the member's transactional producer: the rows of the
job's sinks (each to its topic), the changed state entries (to the steps' compacted
changelog topics), the dead letters (to `<topic>.dlq`) and the consumed offsets (through
`send_offsets_to_transaction`, with the consumer's group metadata). read_committed readers
see all of it or none of it.

Who may commit: the transactional.id is `<group>-<member>`, one per consumer, stable across
restarts, so a restarted member fences its previous incarnation and aborts the transaction
it left open at once. A member whose partitions moved to someone else is fenced by the
group coordinator, which refuses offsets sent with a generation the group has left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import Final

import structlog

from pipeline.adapters.kafka.admin import KafkaTopicAdmin
from pipeline.adapters.kafka.changelog import ChangelogReader, changelog_spec
from pipeline.adapters.kafka.group_consumer import KafkaGroupConsumer
from pipeline.adapters.kafka.txn_producer import KafkaTransactionalProducer, OwnershipMoved
from pipeline.application.errors import (
    BrokerUnavailable,
    ConfigurationError,
    Fenced,
    StoreUnavailable,
)
from pipeline.application.kafka_authority import (
    TopicSink,
    TransactionPlanner,
    changelog_topics,
    lost_partitions,
    owned_parts,
)
from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch, Committed
from pipeline.application.topic_names import dead_letter_topic

log = structlog.get_logger(__name__)

_MAX_PLANS: Final = 5
"""Times a batch is planned again because partitions moved while it was being written."""


class KafkaTransactionalCheckpoint:
    """A `CheckpointStore` writing each batch as one Kafka transaction (see the module doc).

    Bound to one member of a consumer group (`consumer`) and its own transactional producer.
    `steps` are the job's stateful step ids (the reserved stream-time step is added); their
    changelog topics are created, compacted, with as many partitions as the largest source
    topic, on the first call (or `start`), when the sink and dead-letter topics are also
    checked to exist.

    `commit` writes only what belongs to source partitions this member holds now; the
    others (revoked since the batch was read) are returned in `Committed.fenced` with the
    group's committed offset, for the caller to release. It raises `Fenced` when the group
    refused the offsets (this member is no longer in the generation that holds them),
    `ProducerFenced` when a newer instance took this member's transactional.id, and
    `BrokerUnavailable` when Kafka failed transiently: the batch is not durable, and
    committing the same (or an equal) batch again is safe, also when a commit timed out and
    may have succeeded (it is settled first, never written twice).

    `start_offsets` of a batch are not checked against stored offsets: the group
    coordinator's generation check fences stale writers instead, without a request per
    batch.
    """

    def __init__(
        self,
        *,
        consumer: KafkaGroupConsumer,
        producer: KafkaTransactionalProducer,
        admin: KafkaTopicAdmin,
        changelogs: ChangelogReader,
        sinks: Mapping[str, TopicSink],
        steps: Sequence[str],
    ) -> None:
        self._consumer = consumer
        self._group_id = consumer.group_id
        self._producer = producer
        self._admin = admin
        self._reader = changelogs
        self._sinks = dict(sinks)
        self._changelogs = changelog_topics(self._group_id, steps)
        self._planner = TransactionPlanner(sinks, self._changelogs)
        self._counts: dict[str, int] = {}
        """Partitions of each subscribed topic, read at start."""
        self._started = False
        self._start_lock = asyncio.Lock()

    @property
    def changelog_topics(self) -> dict[str, str]:
        """The changelog topic of each stateful step."""
        return dict(self._changelogs)

    async def start(self) -> None:
        """Initialise the producer's transactions (fencing older instances of this member),
        create the changelog topics and check the sink and dead-letter topics exist."""
        async with self._start_lock:
            if self._started:
                return
            await self._producer.start()
            for topic in self._consumer.topics:
                count = await self._admin.partition_count(topic)
                if not count:
                    raise ConfigurationError(f"source topic {topic!r} does not exist")
                self._counts[topic] = count
            partitions = max(self._counts.values())
            await self._admin.ensure_topics(
                [changelog_spec(topic, partitions) for topic in self._changelogs.values()]
            )
            for topic in self._changelogs.values():
                count = await self._admin.partition_count(topic)
                if count < partitions:
                    raise ConfigurationError(
                        f"changelog topic {topic!r} has {count} partitions; the job's sources "
                        f"have {partitions}: delete it (its state is lost) or add partitions"
                    )
            outputs = {sink.topic for sink in self._sinks.values()}
            outputs |= {dead_letter_topic(topic) for topic in self._consumer.topics}
            missing = [t for t in sorted(outputs) if not await self._admin.partition_count(t)]
            if missing:
                raise ConfigurationError(f"output topic(s) {missing} do not exist: create them")
            self._started = True

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """Write the batch's sink rows, state changes, dead letters and next offsets as one
        transaction; see the class doc for what is fenced and what is raised."""
        self._check_group(batch.group_id)
        await self.start()
        planner = self._planner
        encoded = await planner.encode(batch)
        for _ in range(_MAX_PLANS):
            revocations = self._consumer.revocations
            owned = owned_parts(self._consumer.assignment(), self._counts)
            records, written = planner.records(batch, encoded, owned)
            offsets = planner.offsets(batch, owned)
            if not records and not offsets:
                break

            def still_owned(seen: int = revocations) -> bool:
                # Any revocation since planning, even of other partitions or one followed by
                # an assignment of the same ones, means a new plan: cheap, and never wrong.
                return self._consumer.revocations == seen

            try:
                await self._producer.transact(
                    batch, records, offsets, self._consumer.group_metadata, still_owned
                )
            except OwnershipMoved:
                continue
            break
        else:
            raise Fenced(f"the partitions of group {self._group_id!r} kept moving during a commit")
        return Committed(written=written, fenced=await self._fenced(batch, owned))

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets of `partitions` (those never committed are left
        out), once no transaction that commits some of them is still open."""
        self._check_group(group_id)
        await self.start()
        return await self._admin.committed_offsets(group_id, partitions)

    async def load_state(
        self, group_id: str, parts: Sequence[int]
    ) -> dict[int, dict[str, Collection[tuple[bytes, bytes]]]]:
        """The state of source partitions `parts` as the last committed batch left it, read
        from the changelog topics (read_committed, from the beginning to the end).

        The group's offsets of those partitions are settled first (waiting for a previous
        owner's open transaction to end), so the state read is that of the batch whose
        offsets `stored_offsets` returns, whichever of the two the caller asks first."""
        self._check_group(group_id)
        await self.start()
        await self._admin.committed_offsets(
            group_id,
            [
                TopicPartition(topic, part)
                for topic, count in self._counts.items()
                for part in parts
                if part < count
            ],
        )
        found = await self._reader.read(list(self._changelogs.values()), parts)
        state: dict[int, dict[str, Collection[tuple[bytes, bytes]]]] = {p: {} for p in parts}
        for step, topic in self._changelogs.items():
            for part, entries in found[topic].items():
                if entries:
                    state[part][step] = entries.items()  # no copy: `RestoredEntries` reads it
        return state

    async def ping(self) -> None:
        """Return when the brokers answer; raise StoreUnavailable when they do not."""
        try:
            await self._admin.partition_count(self._consumer.topics[0])
        except BrokerUnavailable as exc:
            raise StoreUnavailable(f"Kafka does not answer: {exc}") from exc

    async def close(self) -> None:
        """Release the transactional producer (the consumer is the caller's to close)."""
        await self._producer.close()

    async def _fenced(
        self, batch: CheckpointBatch, owned: frozenset[int]
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets of the partitions lost, for information only: the
        batch is committed by now, so failing to read them must not fail the commit (the
        caller would retry a batch already durable). The batch's start offset stands in."""
        stored: dict[TopicPartition, int] = {}
        lost = lost_partitions(batch, owned)
        if lost:
            try:
                stored = await self._admin.committed_offsets(self._group_id, lost, stable=False)
            except BrokerUnavailable as exc:
                log.warning("cannot read the offsets of partitions moved away", error=str(exc))
        return {tp: stored.get(tp, batch.start_offsets.get(tp, 0)) for tp in lost}

    def _check_group(self, group_id: str) -> None:
        if group_id != self._group_id:
            raise ConfigurationError(
                f"this checkpoint commits for group {self._group_id!r}, not {group_id!r}"
            )
