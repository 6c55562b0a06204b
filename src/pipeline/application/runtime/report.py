"""What handling one batch did: the result type the generic consumer loop, its retries and
its statistics share (a leaf module, so none of them imports a job's module for it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.application.ports.records import TopicPartition


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLettered:
    """A record that produced nothing, and why (dead-lettered, or refused)."""

    topic: str
    partition: int
    offset: int
    error_class: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchReport:
    """What handling one batch did."""

    records: int
    written: Mapping[str, int] = field(default_factory=dict)
    """Rows each sink really inserted or changed (a row written before counts 0)."""
    skipped: int = 0
    """Records of partitions whose batch had been handled already (a zombie's or a repeat)."""
    dead_lettered: tuple[DeadLettered, ...] = ()
    refused: tuple[DeadLettered, ...] = ()
    """Records a step refused without a dead letter (another job reading their topic
    dead-letters them): counted only."""
    late: int = 0
    """Records that arrived after their window closed (sent to the late topic)."""
    events: tuple[object, ...] = ()
    """What the sinks stored for the first time and others may want to hear of (alerts)."""
    next_offsets: Mapping[TopicPartition, int] = field(default_factory=dict)
    diverted: Mapping[str, int] = field(default_factory=dict)
    """Records moved to a retry topic or the dead-letter topic, by topic."""
    diverted_because: str = ""
    """The class of the transient error that kept failing the batch it diverted."""
    commit_seconds: float = 0.0
    """How long the store's transaction took (the one that made the batch durable)."""
    fenced: Mapping[TopicPartition, int] = field(default_factory=dict)
    """Partitions the store refused because another member had stored them further (to
    these offsets): nothing of them was written, and they must be read again from there."""
