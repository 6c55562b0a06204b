"""`KafkaTopicAdmin`: topic creation and end offsets for `KafkaEventLog`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from confluent_kafka import IsolationLevel, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from pipeline.adapters.kafka.config import kafka_error_of, translate
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import TopicSpec


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

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The high watermark of every partition of `topic` (empty if it does not exist).

        One ListOffsets request for all partitions rather than one watermark query each.
        """
        try:
            metadata = await asyncio.to_thread(self._admin.list_topics, topic, self._timeout)
        except KafkaException as exc:
            raise translate(exc, f"cannot read the metadata of topic {topic!r}") from exc
        described = metadata.topics.get(topic)
        if described is None:
            return {}
        if described.error is not None:
            if described.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return {}
            raise BrokerUnavailable(
                f"cannot read the metadata of topic {topic!r}: {described.error.str()}"
            )
        request: dict[KafkaTopicPartition, OffsetSpec] = {
            KafkaTopicPartition(topic, number): OffsetSpec.latest()
            for number in described.partitions
        }
        try:
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
        except KafkaException as exc:
            raise translate(exc, f"cannot read the end offsets of topic {topic!r}") from exc
