"""librdkafka configuration of the Kafka adapters, and translation of Kafka errors.

Each client's configuration is: the tuned defaults below, then the caller's options for
every client (`client_config`: security.protocol, sasl.*, ssl.* …), then the caller's
options for that role. The settings the adapters' guarantees rest on (idempotent
producer, manual offset commits) are enforced: overriding them is a ConfigurationError.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException

from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.domain.errors import PipelineError

PRODUCER_DEFAULTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "linger.ms": "5",
        # lz4 and zstd are both built into the bundled librdkafka; lz4 costs the least CPU
        # per record at the small record sizes of sensor readings.
        "compression.type": "lz4",
        "batch.size": "1000000",
        "batch.num.messages": "10000",
        "queue.buffering.max.messages": "500000",
        "queue.buffering.max.kbytes": "1048576",
        # Kafka's Java default partitioner, so keys land where InMemoryEventLog and Java
        # producers put them (librdkafka's default is CRC32-based).
        "partitioner": "murmur2_random",
        # The application creates its topics with explicit partition counts.
        "allow.auto.create.topics": "false",
        # The broker's topic limits decide what fits, not librdkafka's 1,000,000: a dead
        # letter or retry copy of a record at its topic's limit is larger than the record,
        # and its topic is sized for it (TopicSpec.holds_records_of).
        "message.max.bytes": "100000000",
    }
)
PRODUCER_ENFORCED: Final[Mapping[str, str]] = MappingProxyType(
    {"enable.idempotence": "true", "acks": "all"}
)

CONSUMER_DEFAULTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "auto.offset.reset": "earliest",
        # Cooperative rebalancing moves only the partitions that change owner: the other
        # members keep consuming, and `resolve_offsets` runs only for newly assigned
        # partitions. Every member of a group must use the same protocol.
        "partition.assignment.strategy": "cooperative-sticky",
        # A member that dies without leaving (SIGKILL, a lost machine) holds its partitions
        # until its session expires: 10 s rather than librdkafka's 45 s. Heartbeats are sent
        # by librdkafka's own thread, so a busy event loop does not delay them; one a second
        # also tells the members of a rebalance sooner (librdkafka's default is 3 s).
        "session.timeout.ms": "10000",
        "heartbeat.interval.ms": "1000",
        "isolation.level": "read_committed",
        "enable.partition.eof": "false",
        "allow.auto.create.topics": "false",
        # Prefetch: librdkafka keeps up to 100,000 records of every partition and 64 MiB
        # queued, and fetches 1 MiB of a partition at a time, so a worker facing a backlog
        # held most of it in memory (~100 MiB for 300,000 readings). A few batches' worth
        # keeps the fetcher ahead of the worker at a fraction of that (5,000 a partition
        # left the worker's polls short of full batches: 46 batches for 30 full ones, ~10%
        # more CPU per record); with the queue that small, a fetch it postponed because the
        # queue was full is tried again after 20 ms rather than librdkafka's 1 s.
        "queued.min.messages": "10000",
        "queued.max.messages.kbytes": "2048",
        "max.partition.fetch.bytes": "65536",
        "fetch.queue.backoff.ms": "20",
    }
)
INTERLEAVED_FETCH_BYTES: Final = 65_536
"""`max.partition.fetch.bytes` of an interleaved consumer (librdkafka's default is 1 MiB: a
backlog then comes a megabyte of one partition at a time), whatever the consumer options say
(the consumers' default is the same, for memory's sake; a larger one set for them does not
reach an interleaved consumer)."""
CONSUMER_ENFORCED: Final[Mapping[str, str]] = MappingProxyType(
    {"enable.auto.commit": "false", "enable.auto.offset.store": "false"}
)

BROKER_DOWN_CODES: Final = frozenset(
    {
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TRANSPORT,
        KafkaError._RESOLVE,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
    }
)
CONFIGURATION_CODES: Final = frozenset(
    {
        KafkaError.INVALID_CONFIG,
        KafkaError.INVALID_PARTITIONS,
        KafkaError.INVALID_REPLICATION_FACTOR,
        KafkaError.INVALID_REPLICA_ASSIGNMENT,
        KafkaError.POLICY_VIOLATION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError._INVALID_ARG,
    }
)


def client_settings(
    role: str,
    *,
    bootstrap_servers: str,
    client_id: str,
    client_config: Mapping[str, str],
    role_config: Mapping[str, str] = MappingProxyType({}),
    defaults: Mapping[str, str] = MappingProxyType({}),
    enforced: Mapping[str, str] = MappingProxyType({}),
) -> dict[str, Any]:
    """The librdkafka configuration of one client (`role` names it in errors)."""
    settings: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, "client.id": client_id}
    settings.update(defaults)
    settings.update(client_config)
    settings.update(role_config)
    for key, value in enforced.items():
        given = settings.get(key)
        if given is not None and str(given).lower() != value:
            raise ConfigurationError(f"the Kafka {role} needs {key}={value}, not {given!r}")
        settings[key] = value
    return settings


LEADERSHIP_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REPLICA_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.FENCED_LEADER_EPOCH,
    }
)
"""Errors of a partition whose leader is being elected (a new topic, a broker restart): a
leader epoch unknown to the broker asked (it has not caught up with the new leadership yet)
or older than its own (the asker's metadata has not) is the same moment seen from either
side."""


def kafka_error_of(exc: BaseException) -> KafkaError | None:
    """The KafkaError a KafkaException carries, if any."""
    if exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def translate(
    exc: KafkaException, action: str, default: type[PipelineError] = BrokerUnavailable
) -> PipelineError:
    """The application error for a failed Kafka call (raise it `from exc`)."""
    error = kafka_error_of(exc)
    detail = error.str() if error is not None else str(exc)
    code = error.code() if error is not None else None
    if code in CONFIGURATION_CODES:
        return ConfigurationError(f"{action}: {detail}")
    if code in BROKER_DOWN_CODES or (error is not None and (error.retriable() or error.fatal())):
        return BrokerUnavailable(f"{action}: {detail}")
    return default(f"{action}: {detail}")
