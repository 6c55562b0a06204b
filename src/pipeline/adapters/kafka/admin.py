"""`KafkaTopicAdmin`: topic creation and end offsets for `KafkaEventLog`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Final, TypeVar, cast

from confluent_kafka import IsolationLevel, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec
from confluent_kafka.cimpl import NewTopic

from pipeline.adapters.kafka.config import BROKER_DOWN_CODES, LOGGER, kafka_error_of, translate
from pipeline.adapters.kafka.connection import ConnectionWatch
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import TopicSpec

T = TypeVar("T")

_RETRY_S = 0.1
"""Pause between two metadata checks while a new topic's partitions get leaders."""
_ATTEMPT_S: Final = 5.0
"""Longest one ListOffsets attempt waits: a request sent to a partition leader that just
died waits for its timeout, and only a new attempt asks the partition's new leader."""
_WATCH_S: Final = 0.1
"""How often a pending admin request looks at the connection errors librdkafka reported."""
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
    """Creates topics and reads high watermarks through a librdkafka AdminClient.

    Created topics are replicated `replication_factor` times (below 1: derived from the
    cluster, `min(3, brokers)`) with `min.insync.replicas` = `min_insync_replicas` (below 1:
    2 from three replicas up, else 1), so that with three brokers an acknowledged record is
    on two of them and losing one broker neither loses records nor stops writes.

    A request that cannot succeed because of the settings (refused credentials, an untrusted
    certificate, a listener speaking another protocol) fails with one ConfigurationError as
    soon as librdkafka reports it, rather than at the timeout (see `ConnectionWatch`).
    """

    def __init__(
        self,
        settings: dict[str, Any],
        *,
        replication_factor: int,
        timeout: float,
        min_insync_replicas: int = -1,
    ) -> None:
        self._watch = ConnectionWatch(settings)
        # The watch reports connection failures, once: librdkafka's own log lines about
        # them (one per reconnection attempt) would only repeat it.
        config = {**settings, "error_cb": self._watch.on_error, "logger": LOGGER, "log_level": 2}
        try:
            self._admin = AdminClient(config)
        except KafkaException as exc:
            raise ConfigurationError(f"invalid Kafka client settings: {_detail(exc)}") from exc
        self._replication_factor = replication_factor
        self._min_insync_replicas = min_insync_replicas
        self._timeout = timeout

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet and wait until the broker has them.

        A topic that already exists is left as it is, whatever its partition count or
        configuration; only missing topics are created, so a principal that may describe
        the topics but not create them (see `pipeline acls`) starts once they exist.
        """
        for spec in specs:
            if spec.partitions < 1:
                raise ConfigurationError(
                    f"topic {spec.name!r} needs at least 1 partition, not {spec.partitions}"
                )
        if not specs:
            return
        described = await self._describe([spec.name for spec in specs])
        missing = [spec for spec in specs if described[spec.name] == []]
        if missing:
            await self._create(missing)
        # The controller acknowledges before every partition has a leader; clients that
        # use the topic at once would see NOT_LEADER errors, so wait for the leaders.
        deadline = time.monotonic() + self._timeout
        waiting = [spec.name for spec in specs if described[spec.name] is None or spec in missing]
        while waiting:
            described = await self._describe(waiting, need_leaders=True)
            waiting = [name for name in waiting if described[name] is None]
            if waiting and time.monotonic() > deadline:
                raise BrokerUnavailable(f"topic {waiting[0]!r} has no partition leaders yet")
            if waiting:
                await asyncio.sleep(_RETRY_S)

    async def replication(self) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) of the topics it creates."""
        factor = self._replication_factor
        if factor < 1:
            factor = min(3, await self._broker_count())
        in_sync = self._min_insync_replicas
        if in_sync < 1:
            in_sync = 2 if factor >= 3 else 1
        return factor, in_sync

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The high watermark of every partition of `topic` (empty if it does not exist).

        One ListOffsets request for all partitions rather than one watermark query each;
        retried while the partitions' leadership is moving.
        """
        deadline = time.monotonic() + self._timeout
        while True:
            partitions = await self._partitions(topic, need_leaders=False)
            if partitions is None:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(f"cannot read the metadata of topic {topic!r}")
                await asyncio.sleep(_RETRY_S)
                continue
            if not partitions:
                return {}
            try:
                return await self._latest_offsets(topic, partitions)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                moving = error is not None and (
                    error.retriable()
                    or error.code() in _LEADERSHIP_MOVING
                    or error.code() in BROKER_DOWN_CODES
                )
                if not moving or time.monotonic() > deadline:
                    raise translate(exc, f"cannot read the end offsets of {topic!r}") from exc
            await asyncio.sleep(_RETRY_S)

    async def _create(self, specs: Sequence[TopicSpec]) -> None:
        factor, in_sync = await self.replication()
        new_topics = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=factor,
                config={"min.insync.replicas": str(in_sync), **spec.config},
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
                await self._answer(future)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                    raise ConfigurationError(
                        f"cannot create topic {name!r}: this Kafka principal may not create "
                        "topics. Create them with `pipeline topics create` as a principal "
                        "that may (an administrator), then start again."
                    ) from exc
                raise translate(exc, f"cannot create topic {name!r}") from exc

    async def _broker_count(self) -> int:
        """The brokers the cluster has now (a broker that is down is not counted)."""
        try:
            cluster = await self._answer(
                self._admin.describe_cluster(request_timeout=self._timeout)
            )
        except KafkaException as exc:
            raise translate(exc, "cannot describe the Kafka cluster") from exc
        return max(1, len(cluster.nodes))

    async def _describe(
        self, topics: list[str], *, need_leaders: bool = False
    ) -> dict[str, list[int] | None]:
        """The partition numbers of each topic ([] if it does not exist), or None while its
        metadata is incomplete or unavailable (with `need_leaders`: while a partition has no
        leader).

        Metadata requests go to any broker; librdkafka's DescribeTopics waits for the
        controller it last knew, which after that broker died stays unknown for minutes."""
        return {topic: await self._partitions(topic, need_leaders=need_leaders) for topic in topics}

    async def _partitions(self, topic: str, *, need_leaders: bool) -> list[int] | None:
        try:
            metadata = await self._watched(
                asyncio.to_thread(self._admin.list_topics, topic, min(self._timeout, _ATTEMPT_S))
            )
        except KafkaException as exc:
            error = kafka_error_of(exc)
            if error is not None and (error.retriable() or error.code() in BROKER_DOWN_CODES):
                return None
            raise translate(exc, f"cannot read the metadata of topic {topic!r}") from exc
        described = metadata.topics.get(topic)
        if described is None:
            return []
        if described.error is not None:
            code = described.error.code()
            if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None if need_leaders else []
            if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise ConfigurationError(
                    f"this Kafka principal may not use topic {topic!r} "
                    "(TOPIC_AUTHORIZATION_FAILED): grant it the ACLs `pipeline acls` lists"
                )
            if described.error.retriable() or code in _LEADERSHIP_MOVING:
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
        request: dict[KafkaTopicPartition, OffsetSpec] = {
            KafkaTopicPartition(topic, number): OffsetSpec.latest()  # type: ignore[no-untyped-call]
            for number in partitions
        }
        futures = self._admin.list_offsets(
            request,
            isolation_level=IsolationLevel.READ_UNCOMMITTED,
            request_timeout=min(self._timeout, _ATTEMPT_S),
        )
        return {
            # cast: the types-confluent-kafka stubs lack ListOffsetsResultInfo.offset
            tp.partition: int(cast(Any, await self._answer(future)).offset)
            for tp, future in futures.items()
        }

    async def _answer(self, future: concurrent.futures.Future[T]) -> T:
        """The result of an admin request; a ConfigurationError as soon as the connection
        errors librdkafka reports meanwhile show that the settings cannot work."""
        return await self._watched(asyncio.wrap_future(future))

    async def _watched(self, awaitable: Awaitable[T]) -> T:
        """`awaitable`'s result, watching the connection errors meanwhile (see `_answer`)."""
        pending = asyncio.ensure_future(awaitable)
        while True:
            done, _ = await asyncio.wait({pending}, timeout=_WATCH_S)
            if done:
                self._watch.answered()
                return pending.result()
            self._admin.poll(0)  # serves error_cb
            problem = self._watch.problem()
            if problem is None and self._watch.probe_due():
                problem = await asyncio.to_thread(self._watch.probe)
            if problem is not None:
                pending.cancel()
                raise problem


def _detail(exc: KafkaException) -> str:
    error = kafka_error_of(exc)
    text = error.str() if error is not None else str(exc)
    return text.removeprefix("Failed to create admin client: ")
