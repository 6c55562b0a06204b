"""Errors of the application layer and the adapters behind its ports.

    PipelineError                        (pipeline.domain.errors)
    ├── DomainError …                    invalid events, see pipeline.domain.errors
    ├── DecodeError                      bytes on the wire cannot become an event
    │   ├── MissingValue                 the record has no value (tombstone)
    │   ├── BadMagicByte                 not Confluent wire format
    │   ├── UnknownSchemaId              the registry does not know the schema id
    │   └── MalformedPayload             truncated bytes, or Avro not matching its schema
    ├── SchemaRegistryError              the registry refused or failed a request
    │   └── IncompatibleSchema           a schema change breaks the subject's compatibility
    ├── PublishError                     the broker did not acknowledge a record
    │   └── RecordTooLarge               over the topic's (or the client's) size limit
    ├── ConnectorError                   Kafka Connect refused or failed a request
    ├── Fenced                           another owner took over: re-sync from the checkpoint
    │   └── ProducerFenced               another live instance uses this transactional.id
    ├── TransientError                   a dependency is unavailable; retrying may succeed
    │   ├── BrokerUnavailable
    │   ├── StoreUnavailable
    │   ├── RegistryUnavailable
    │   └── TimeSeriesUnavailable
    ├── TimeSeriesRejected               the time-series server refused the points
    └── ConfigurationError               settings that cannot work together

Each error has a stable `error_class` string used in logs, counters and dead-letter headers.
"""

from __future__ import annotations

from pipeline.domain.errors import PipelineError


class DecodeError(PipelineError):
    """Bytes on the wire could not be turned into an event."""

    error_class = "undecodable"


class MissingValue(DecodeError):
    """The record has no value."""

    error_class = "missing_value"


class BadMagicByte(DecodeError):
    """The value does not start with the Confluent wire-format magic byte 0."""

    error_class = "bad_magic_byte"


class UnknownSchemaId(DecodeError):
    """The schema id in the value is not known to the schema registry."""

    error_class = "unknown_schema_id"


class MalformedPayload(DecodeError):
    """The Avro body is truncated or does not match its writer schema."""

    error_class = "malformed_payload"


class SchemaRegistryError(PipelineError):
    """The schema registry refused or failed a request."""

    error_class = "schema_registry"


class IncompatibleSchema(SchemaRegistryError):
    """A new schema version breaks the compatibility level of its subject."""

    error_class = "incompatible_schema"


class PublishError(PipelineError):
    """The broker did not acknowledge a published record."""

    error_class = "publish_failed"


class Fenced(PipelineError):
    """A batch was not made durable because its partitions may belong to someone else now
    (the consumer group moved on to a new generation, or this member left it). Nothing of
    the batch is visible; the caller's in-memory state may be ahead of what is durable, so
    it restores the state and offsets of the partitions it still holds from the checkpoint
    and reads on from there."""

    error_class = "fenced"


class ProducerFenced(Fenced):
    """Another live instance started with this instance's transactional.id (the same
    group and member id): this instance is the zombie and must stop."""

    error_class = "producer_fenced"


class RecordTooLarge(PublishError):
    """A record is larger than its topic (or the client) accepts: retrying cannot help."""

    error_class = "record_too_large"


class ConnectorError(PipelineError):
    """Kafka Connect is unreachable, or refused or failed a request (an invalid connector
    config, an unknown connector)."""

    error_class = "connector"


class TransientError(PipelineError):
    """A dependency is unavailable or timed out; the same work may succeed later."""

    error_class = "transient"


class BrokerUnavailable(TransientError):
    """The message broker cannot be reached."""

    error_class = "broker_unavailable"


class StoreUnavailable(TransientError):
    """The database cannot be reached, timed out, or aborted the transaction."""

    error_class = "store_unavailable"


class RegistryUnavailable(TransientError):
    """The schema registry cannot be reached, timed out, or answered with a server error."""

    error_class = "registry_unavailable"


class StoreRejected(PipelineError):
    """The store refused the data itself (a constraint or a value it cannot hold): retrying
    cannot help, and the record responsible becomes a dead letter."""

    error_class = "store_rejected"


class TimeSeriesUnavailable(TransientError):
    """The time-series server cannot be reached, timed out, or kept answering 429 or 5xx."""

    error_class = "timeseries_unavailable"


class TimeSeriesRejected(PipelineError):
    """The time-series server refused the points themselves (a 4xx other than 429): retrying
    cannot help, and the record responsible becomes a dead letter."""

    error_class = "timeseries_rejected"


class ConfigurationError(PipelineError):
    """Settings that cannot work together."""

    error_class = "configuration"


def error_class_of(error: BaseException) -> str:
    """The stable name of an error's class, for logs, counters and dead-letter headers: the
    rule a domain error (or any error with a `rule`, e.g. a job's own validation error)
    names, else its `error_class`, else `processing_error`."""
    for attribute in ("rule", "error_class"):
        name = getattr(error, attribute, None)
        if isinstance(name, str):
            return name
    return "processing_error"
