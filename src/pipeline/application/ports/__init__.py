"""Ports: what the application needs from the outside world, as Protocols.

Adapters in `pipeline.adapters` implement them twice: in memory (the embedded default and the
fast fake) and for real (Kafka, PostgreSQL, a Confluent-compatible schema registry). One
contract suite per port, in tests/contract, proves both behave alike.

The ports live in one module per role; every name is re-exported here, so importers say
`from pipeline.application.ports import X` whichever module defines it.
"""

from pipeline.application.ports.dead_letters import DeadLetter, DeadLetterFilter, DeadLetterStore
from pipeline.application.ports.event_log import EventConsumer, EventLog, OffsetResolver
from pipeline.application.ports.records import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES,
    Clock,
    OutgoingRecord,
    Record,
    Timer,
    TopicPartition,
    TopicSpec,
)
from pipeline.application.ports.registry import Codec, SchemaRegistry
from pipeline.application.ports.sensor_store import (
    AlertFilter,
    AlertPosition,
    ReadingStats,
    SensorStore,
    StoredAlert,
    TypeStats,
)
from pipeline.application.ports.tables import (
    ChangelogTable,
    ChangelogTables,
    KeyDecoder,
    TableCodec,
    ValueDecoder,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_BYTES",
    "AlertFilter",
    "AlertPosition",
    "ChangelogTable",
    "ChangelogTables",
    "Clock",
    "Codec",
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStore",
    "EventConsumer",
    "EventLog",
    "KeyDecoder",
    "OffsetResolver",
    "OutgoingRecord",
    "ReadingStats",
    "Record",
    "SchemaRegistry",
    "SensorStore",
    "StoredAlert",
    "TableCodec",
    "Timer",
    "TopicPartition",
    "TopicSpec",
    "TypeStats",
    "ValueDecoder",
]
