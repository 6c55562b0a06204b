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
    ├── ConnectorError                   Kafka Connect refused or failed a request
    ├── TransientError                   a dependency is unavailable; retrying may succeed
    │   ├── BrokerUnavailable
    │   ├── StoreUnavailable
    │   └── RegistryUnavailable
    └── ConfigurationError               settings that cannot work together

Each error has a stable `error_class` string used in logs, counters and dead-letter headers.
"""

from __future__ import annotations

from pipeline.domain.errors import DomainError, PipelineError


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


class ConfigurationError(PipelineError):
    """Settings that cannot work together."""

    error_class = "configuration"


def error_class_of(error: BaseException) -> str:
    """The stable name of an error's class, for logs, counters and dead-letter headers."""
    if isinstance(error, DomainError):
        return error.rule
    name = getattr(error, "error_class", None)
    return name if isinstance(name, str) else "processing_error"
