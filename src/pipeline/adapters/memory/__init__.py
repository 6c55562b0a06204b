"""In-memory adapters: the embedded default behind every port, and the fast fakes of tests."""

from pipeline.adapters.memory.log import InMemoryEventLog
from pipeline.adapters.memory.registry import InMemorySchemaRegistry
from pipeline.adapters.memory.sensor_store import InMemorySensorStore

__all__ = [
    "InMemoryEventLog",
    "InMemorySchemaRegistry",
    "InMemorySensorStore",
]
