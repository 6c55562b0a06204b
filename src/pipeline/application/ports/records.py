"""Records of the event log, where they live, the topics the application owns, the clock and
the timer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    """One partition of one topic."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One record read from the event log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    """Broker or producer timestamp (CreateTime), milliseconds since the epoch."""
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def topic_partition(self) -> TopicPartition:
        """Where the record lives."""
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingRecord:
    """A record to publish."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None
    """CreateTime, milliseconds since the epoch; None: now."""


MAX_MESSAGE_BYTES = "max.message.bytes"
"""The topic setting (Kafka's name) that bounds the size of a record batch on a topic."""
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
"""Kafka's default for it: the largest record of a topic created without one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    """A topic the application owns: created with an explicit partition count."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)
    holds_records_of: str | None = None
    """A topic whose records this one receives copies of, with headers added (its retry or
    dead-letter topic): its `max.message.bytes` is set to that topic's plus
    `headroom_bytes`, on creation and, when lower, on an existing topic too."""
    headroom_bytes: int = 0


@runtime_checkable
class Clock(Protocol):
    """Processing time."""

    def now(self) -> datetime:
        """The current time, tz-aware UTC."""
        ...


@runtime_checkable
class Timer(Protocol):
    """Elapsed time and waiting: what paces a producer against the clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Return once `seconds` have passed or `stop` is set, whichever comes first."""
        ...
