"""`KafkaEventLog`: the event log on Apache Kafka, through confluent-kafka (librdkafka)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from pipeline.adapters.kafka.admin import KafkaTopicAdmin
from pipeline.adapters.kafka.changelog import ChangelogReader
from pipeline.adapters.kafka.config import (
    CONSUMER_DEFAULTS,
    CONSUMER_ENFORCED,
    INTERLEAVED_FETCH_BYTES,
    PRODUCER_DEFAULTS,
    PRODUCER_ENFORCED,
    client_settings,
)
from pipeline.adapters.kafka.consumer import KafkaPartitionReader
from pipeline.adapters.kafka.group_consumer import KafkaGroupConsumer
from pipeline.adapters.kafka.logs import KafkaLogs, with_logs
from pipeline.adapters.kafka.producer import KafkaRecordProducer
from pipeline.adapters.kafka.rewind import KafkaGroupRewind
from pipeline.adapters.kafka.table import KafkaChangelogTable
from pipeline.adapters.kafka.transactions import KafkaTransactionalCheckpoint
from pipeline.adapters.kafka.txn_producer import KafkaTransactionalProducer
from pipeline.application.errors import ConfigurationError, PublishError
from pipeline.application.kafka_authority import OutRecord, TopicSink, transactional_id
from pipeline.application.ports import (
    EventConsumer,
    OffsetResolver,
    OutgoingRecord,
    TopicPartition,
    TopicSpec,
)
from pipeline.application.ports.tables import KeyDecoder, ValueDecoder

_EMPTY: Mapping[str, str] = MappingProxyType({})
K = TypeVar("K")
V = TypeVar("V")
TRANSACTION_TIMEOUT_MS = "10000"
"""Default transaction.timeout.ms of transactional producers (Kafka Streams' under
exactly-once): how long a transaction left open by a crashed member that never comes back
holds read_committed readers, and the restore of its partitions, before the coordinator
aborts it. A member restarted with the same id aborts it at once."""


class KafkaEventLog:
    """An `EventLog` on Kafka.

    The producer is idempotent (acks=all), batches with linger.ms=5 and lz4, and places
    keys with Kafka's murmur2 partitioner. Consumers commit only when told to, read
    committed records only, and rebalance cooperatively. Clients are created on first use.

    Args:
        bootstrap_servers: host:port[,host:port…] of the brokers.
        client_config: librdkafka options for every client, passed through verbatim
            (security.protocol, sasl.*, ssl.* …).
        client_id: the client.id the brokers see.
        producer_config: librdkafka options for the producer only (e.g. linger.ms).
        consumer_config: librdkafka options for consumers only (e.g. session.timeout.ms).
        replication_factor: of created topics; below 1: derived from the cluster
            (`min(3, brokers)`).
        min_insync_replicas: of created topics; below 1: 2 from three replicas up, else 1.
        timeout: seconds for admin requests, commits, lag queries and offset resolution.
        connect_timeout: seconds the first admin request (creating topics, reading end
            offsets) waits for a broker to answer before BrokerUnavailable says none does.
        group_instance_id: static membership (`group.instance.id`) for the group
            consumers: a member restarted under the same id takes its partitions back at
            once, without a rebalance; no two live members of a group may share it.

    librdkafka's logs and errors go through `KafkaLogs` (structlog, deduplicated; one line
    when a broker becomes unreachable and one when it is back).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        client_config: Mapping[str, str] | None = None,
        client_id: str = "pipeline",
        *,
        producer_config: Mapping[str, str] | None = None,
        consumer_config: Mapping[str, str] | None = None,
        replication_factor: int = -1,
        min_insync_replicas: int = -1,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        group_instance_id: str | None = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._connect_timeout = connect_timeout
        self._group_instance_id = group_instance_id
        self._logs = KafkaLogs(bootstrap_servers, grace_s=connect_timeout)
        self._client_config = dict(client_config or _EMPTY)
        self._client_id = client_id
        self._producer_config = dict(producer_config or _EMPTY)
        self._consumer_config = dict(consumer_config or _EMPTY)
        self._replication_factor = replication_factor
        self._min_insync_replicas = min_insync_replicas
        self._timeout = timeout
        self._producer: KafkaRecordProducer | None = None
        self._admin: KafkaTopicAdmin | None = None
        self._closed = False
        # Fail on contradictory settings now rather than at the first publish or poll.
        self._settings("producer", PRODUCER_DEFAULTS, self._producer_config, PRODUCER_ENFORCED)
        self._settings("consumer", CONSUMER_DEFAULTS, self._consumer_config, CONSUMER_ENFORCED)

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""
        await self._admin_client().ensure_topics(specs)

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Delete the topics of `names` that exist, with their records; return once the
        metadata no longer lists them."""
        await self._admin_client().delete_topics(names)

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue one record for delivery; records with the same key keep their order.
        `timestamp_ms` sets its CreateTime (default: now)."""
        await self._producer_client().publish(topic, key, value, headers, timestamp_ms)

    async def deliver(
        self, records: Sequence[OutgoingRecord], timeout: float = 30.0
    ) -> list[PublishError | None]:
        """Publish `records`, flush, and return each one's outcome: None when acknowledged,
        the error when refused for good (RecordTooLarge over its topic's limit)."""
        return await self._producer_client().deliver(records, timeout)

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued record is acknowledged; raise PublishError if one failed."""
        if self._producer is not None:
            await self._producer.flush(timeout)

    def consumer(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        resolve_offsets: OffsetResolver | None = None,
        co_partitioned: bool = False,
        interleaved: bool = False,
    ) -> EventConsumer:
        """Join consumer group `group_id` on `topics`; it rebalances at the next poll.
        `co_partitioned` uses the range assignor, `interleaved` fetches at most
        `INTERLEAVED_FETCH_BYTES` of each partition at a time (see the port)."""
        settings = self._settings(
            "consumer", CONSUMER_DEFAULTS, self._consumer_config, CONSUMER_ENFORCED
        )
        settings["group.id"] = group_id
        if co_partitioned:
            settings["partition.assignment.strategy"] = "range"
        if interleaved:
            settings["max.partition.fetch.bytes"] = str(INTERLEAVED_FETCH_BYTES)
        if self._group_instance_id is not None:
            # Per group: the worker's consumers of several groups share one id.
            settings["group.instance.id"] = self._group_instance_id
        return KafkaGroupConsumer(settings, topics, resolve_offsets, self._timeout, self._logs)

    def reader(self, *, group_id: str, start: Mapping[TopicPartition, int]) -> EventConsumer:
        """Read the given partitions from the given offsets, outside group management."""
        settings = self._settings(
            "consumer", CONSUMER_DEFAULTS, self._consumer_config, CONSUMER_ENFORCED
        )
        settings["group.id"] = group_id
        return KafkaPartitionReader(settings, start, self._timeout, self._logs)

    def transactional_checkpoint(
        self,
        consumer: EventConsumer,
        *,
        member_id: str,
        sinks: Mapping[str, TopicSink],
        steps: Sequence[str],
    ) -> KafkaTransactionalCheckpoint:
        """The Kafka-authority checkpoint of `consumer` (a member of a group made by
        `consumer()`): its own transactional producer, with transactional.id
        `<group>-<member_id>`. `member_id` must be unique among the group's live members
        and the same when the member restarts (e.g. `worker-3`); `sinks` bind the job's
        sink names to topics and encoders; `steps` are the job's stateful step ids."""
        if not isinstance(consumer, KafkaGroupConsumer):
            raise ConfigurationError("a transactional checkpoint needs a Kafka group member")
        return KafkaTransactionalCheckpoint(
            consumer=consumer,
            producer=self._transactional_producer(consumer.group_id, member_id),
            admin=self._admin_client(),
            changelogs=self._changelog_reader(consumer.group_id),
            sinks=sinks,
            steps=steps,
        )

    async def group_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The offsets group `group_id` committed for `partitions` (those it never
        committed left out), once no transaction committing some of them is open."""
        return await self._admin_client().committed_offsets(group_id, partitions)

    async def rewind_group(
        self,
        group_id: str,
        *,
        offsets: Mapping[TopicPartition, int],
        changelogs: Sequence[str],
        state: Sequence[OutRecord],
    ) -> int:
        """Move stopped group `group_id` back to `offsets` with its state, in one
        transaction of transactional.id `<group>-rewind` (see `KafkaGroupRewind`);
        GroupActive while the group has members. Return how many keys were tombstoned."""
        settings = self._settings("consumer", _EMPTY, self._consumer_config, _EMPTY)
        rewind = KafkaGroupRewind(
            group_id,
            admin=self._admin_client(),
            changelogs=self._changelog_reader(group_id),
            producer=self._transactional_producer(group_id, "rewind"),
            consumer_settings=with_logs(settings, self._logs),
        )
        return await rewind.run(offsets, changelogs, state)

    def _transactional_settings(self) -> dict[str, Any]:
        producer_config = {"transaction.timeout.ms": TRANSACTION_TIMEOUT_MS}
        producer_config.update(self._producer_config)
        return self._settings(
            "transactional producer", PRODUCER_DEFAULTS, producer_config, PRODUCER_ENFORCED
        )

    def _transactional_producer(self, group_id: str, member_id: str) -> KafkaTransactionalProducer:
        settings = self._transactional_settings()
        settings["transactional.id"] = transactional_id(group_id, member_id)
        return KafkaTransactionalProducer(with_logs(settings, self._logs), timeout=self._timeout)

    def _changelog_reader(self, group_id: str) -> ChangelogReader:
        timeout_s = int(self._transactional_settings()["transaction.timeout.ms"]) / 1000
        restore = self._settings("consumer", _EMPTY, self._consumer_config, _EMPTY)
        restore["group.id"] = f"{group_id}.restore"
        return ChangelogReader(
            with_logs(restore, self._logs),
            self._admin_client(),
            wait_open=timeout_s + self._timeout,
            stall=self._timeout,
        )

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The high watermark of every partition of `topic` (empty if it does not exist)."""
        return await self._admin_client().end_offsets(topic)

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Per partition, the first offset at or after `timestamp_ms` (else the end)."""
        return await self._admin_client().offsets_for_time(topic, timestamp_ms)

    def changelog_table(
        self, topic: str, *, decode_key: KeyDecoder[K], decode_value: ValueDecoder[V]
    ) -> KafkaChangelogTable[K, V]:
        """A table materialized from compacted topic `topic` (call its `start`)."""
        settings = self._settings(
            "consumer", CONSUMER_DEFAULTS, self._consumer_config, CONSUMER_ENFORCED
        )
        return KafkaChangelogTable(
            settings,
            self._logs,
            topic,
            decode_key=decode_key,
            decode_value=decode_value,
            timeout=self._timeout,
        )

    async def close(self) -> None:
        """Flush what is queued (within the timeout) and drop the clients."""
        self._closed = True
        producer, self._producer, self._admin = self._producer, None, None
        if producer is not None:
            await producer.flush(self._timeout)

    def _producer_client(self) -> KafkaRecordProducer:
        producer = self._producer
        if producer is None:
            if self._closed:
                raise PublishError("the Kafka event log is closed")
            settings = self._settings(
                "producer", PRODUCER_DEFAULTS, self._producer_config, PRODUCER_ENFORCED
            )
            producer = self._producer = KafkaRecordProducer(settings, self._logs)
        return producer

    def _admin_client(self) -> KafkaTopicAdmin:
        if self._admin is None:
            settings = self._settings("admin client", _EMPTY, _EMPTY, _EMPTY)
            self._admin = KafkaTopicAdmin(
                settings,
                self._logs,
                replication_factor=self._replication_factor,
                min_insync_replicas=self._min_insync_replicas,
                timeout=self._timeout,
                connect_timeout=self._connect_timeout,
            )
        return self._admin

    def _settings(
        self,
        role: str,
        defaults: Mapping[str, str],
        role_config: Mapping[str, str],
        enforced: Mapping[str, str],
    ) -> dict[str, Any]:
        return client_settings(
            role,
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            client_config=self._client_config,
            role_config=role_config,
            defaults=defaults,
            enforced=enforced,
        )
