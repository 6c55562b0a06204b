"""`KafkaTopicAdmin`: topic creation and end offsets for `KafkaEventLog`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, cast

from confluent_kafka import IsolationLevel, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec
from confluent_kafka.cimpl import NewTopic

from pipeline.adapters.kafka.config import kafka_error_of, translate
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import TopicSpec

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
        deadline = time.monotonic() + self._timeout
        while True:
            partitions = await self._partitions(topic, need_leaders=False)
            if not partitions:
                return {}
            try:
                return await self._latest_offsets(topic, partitions)
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
            ends = await self._latest_offsets(topic, partitions)
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

    async def _latest_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        return await self._list_offsets(topic, partitions, latest)

    async def _list_offsets(
        self, topic: str, partitions: list[int], spec: OffsetSpec
    ) -> dict[int, int]:
        request: dict[KafkaTopicPartition, OffsetSpec] = {
            KafkaTopicPartition(topic, number): spec for number in partitions
        }
        futures = self._admin.list_offsets(
            request,
            isolation_level=IsolationLevel.READ_UNCOMMITTED,
            request_timeout=self._timeout,
        )
        return {
            # cast: the types-confluent-kafka stubs lack ListOffsetsResultInfo.offset
            tp.partition: int(cast(Any, await asyncio.wrap_future(future)).offset)
            for tp, future in futures.items()
        }
