"""`KafkaTopicAdmin`: topic creation, end offsets and group offsets for the Kafka adapters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, cast

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec
from confluent_kafka.cimpl import NewTopic

from pipeline.adapters.kafka.config import kafka_error_of, translate
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import TopicPartition, TopicSpec

_RETRY_S = 0.1
"""Pause between two metadata checks while a new topic's partitions get leaders."""
_LEADERSHIP_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REPLICA_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)
"""Errors of a partition whose leader is being elected (a new topic, a broker restart)."""
_OFFSETS_PENDING = frozenset(
    {
        KafkaError.UNSTABLE_OFFSET_COMMIT,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)
"""Errors of a group offset fetch worth retrying: a transaction holding offsets of the
partitions is still open, or the group coordinator is moving."""


class KafkaTopicAdmin:
    """Creates topics and reads high watermarks through a librdkafka AdminClient."""

    def __init__(
        self, settings: dict[str, Any], *, replication_factor: int, timeout: float
    ) -> None:
        self._admin = AdminClient(settings)
        self._replication_factor = replication_factor
        self._timeout = timeout

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet and wait until the broker has them.

        A topic that already exists is left as it is, whatever its partition count.
        """
        for spec in specs:
            if spec.partitions < 1:
                raise ConfigurationError(
                    f"topic {spec.name!r} needs at least 1 partition, not {spec.partitions}"
                )
        if not specs:
            return
        new_topics = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=self._replication_factor,
                config=dict(spec.config),
            )
            for spec in specs
        ]
        try:
            futures = self._admin.create_topics(
                new_topics, operation_timeout=self._timeout, request_timeout=self._timeout
            )
        except KafkaException as exc:
            raise translate(exc, "cannot create topics") from exc
        for name, future in futures.items():
            try:
                await asyncio.wrap_future(future)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                raise translate(exc, f"cannot create topic {name!r}") from exc
        # The controller acknowledges before every partition has a leader; clients that
        # use the topic at once would see NOT_LEADER errors, so wait for the leaders.
        deadline = time.monotonic() + self._timeout
        for spec in specs:
            while await self._partitions(spec.name, need_leaders=True) is None:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(f"topic {spec.name!r} has no partition leaders yet")
                await asyncio.sleep(_RETRY_S)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The high watermark of every partition of `topic` (empty if it does not exist).

        One ListOffsets request for all partitions rather than one watermark query each;
        retried while the partitions' leadership is moving.
        """
        return await self._end_offsets(topic, IsolationLevel.READ_UNCOMMITTED)

    async def last_stable_offsets(self, topic: str) -> dict[int, int]:
        """The last stable offset of every partition of `topic`: where a read_committed
        consumer stops, before the first record of a transaction still open (the high
        watermark when none is)."""
        return await self._end_offsets(topic, IsolationLevel.READ_COMMITTED)

    async def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (0 if it does not exist)."""
        return len(await self._partitions(topic, need_leaders=False) or ())

    async def committed_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition], *, stable: bool = True
    ) -> dict[TopicPartition, int]:
        """The offsets group `group_id` committed for `partitions` (those it never committed
        are left out). `stable`: wait while a transaction that commits offsets of theirs is
        still open, so that what is returned is final, never about to change."""
        if not partitions:
            return {}
        request = [
            ConsumerGroupTopicPartitions(
                group_id, [KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions]
            )
        ]
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                futures = self._admin.list_consumer_group_offsets(
                    request, require_stable=stable, request_timeout=self._timeout
                )
                answer = await asyncio.wrap_future(futures[group_id])
                pending = [tp for tp in answer.topic_partitions if tp.error is not None]
                if not pending:
                    return {
                        TopicPartition(tp.topic, tp.partition): tp.offset
                        for tp in answer.topic_partitions
                        if tp.offset >= 0
                    }
                error = pending[0].error
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is None or error.code() not in _OFFSETS_PENDING:
                    raise translate(exc, f"cannot read the offsets of group {group_id!r}") from exc
            if error.code() not in _OFFSETS_PENDING or time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"cannot read the offsets of group {group_id!r}: {error.str()}"
                )
            await asyncio.sleep(_RETRY_S)

    async def _end_offsets(self, topic: str, isolation: IsolationLevel) -> dict[int, int]:
        deadline = time.monotonic() + self._timeout
        while True:
            partitions = await self._partitions(topic, need_leaders=False)
            if not partitions:
                return {}
            try:
                return await self._latest_offsets(topic, partitions, isolation)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                moving = error is not None and (
                    error.retriable() or error.code() in _LEADERSHIP_MOVING
                )
                if not moving or time.monotonic() > deadline:
                    raise translate(exc, f"cannot read the end offsets of {topic!r}") from exc
            await asyncio.sleep(_RETRY_S)

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Per partition of `topic`, the first offset whose timestamp is at or after
        `timestamp_ms` (the end offset when there is none)."""
        partitions = await self._partitions(topic, need_leaders=False) or []
        if not partitions:
            return {}
        spec = OffsetSpec.for_timestamp(timestamp_ms)
        try:
            found = await self._list_offsets(topic, partitions, spec)
            ends = await self._latest_offsets(topic, partitions, IsolationLevel.READ_UNCOMMITTED)
        except KafkaException as exc:
            raise translate(exc, f"cannot look up offsets of {topic!r} by time") from exc
        return {p: found[p] if found[p] >= 0 else ends[p] for p in partitions}

    async def _partitions(self, topic: str, *, need_leaders: bool) -> list[int] | None:
        """The partition numbers of `topic` ([] if it does not exist), or None while the
        metadata is incomplete."""
        try:
            metadata = await asyncio.to_thread(self._admin.list_topics, topic, self._timeout)
        except KafkaException as exc:
            raise translate(exc, f"cannot read the metadata of topic {topic!r}") from exc
        described = metadata.topics.get(topic)
        if described is None:
            return []
        if described.error is not None:
            if described.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None if need_leaders else []
            if described.error.retriable():
                return None
            raise BrokerUnavailable(
                f"cannot read the metadata of topic {topic!r}: {described.error.str()}"
            )
        partitions = described.partitions
        if need_leaders and (
            not partitions or any(p.leader < 0 or p.error is not None for p in partitions.values())
        ):
            return None
        return sorted(partitions)

    async def _latest_offsets(
        self, topic: str, partitions: list[int], isolation: IsolationLevel
    ) -> dict[int, int]:
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        return await self._list_offsets(topic, partitions, latest, isolation)

    async def _list_offsets(
        self,
        topic: str,
        partitions: list[int],
        spec: OffsetSpec,
        isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED,
    ) -> dict[int, int]:
        request: dict[KafkaTopicPartition, OffsetSpec] = {
            KafkaTopicPartition(topic, number): spec for number in partitions
        }
        futures = self._admin.list_offsets(
            request,
            isolation_level=isolation,
            request_timeout=self._timeout,
        )
        return {
            # cast: the types-confluent-kafka stubs lack ListOffsetsResultInfo.offset
            tp.partition: int(cast(Any, await asyncio.wrap_future(future)).offset)
            for tp, future in futures.items()
        }
