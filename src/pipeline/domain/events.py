"""Domain events: facts about what happened, named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.domain.alerts import Alert, Threshold
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingRecorded:
    """A valid reading was accepted into the projection."""

    reading: Reading


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingRejected:
    """A reading broke a domain rule and was not recorded."""

    rule: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdBreached:
    """A reading went beyond its sensor type's operating threshold."""

    reading: Reading
    threshold: Threshold


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRaised:
    """An alert was raised and stored; it is published to the alerts topic."""

    alert: Alert


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowUpdated:
    """A per-sensor event-time window received readings and has new statistics."""

    aggregate: WindowAggregate


DomainEvent = ReadingRecorded | ReadingRejected | ThresholdBreached | AlertRaised | WindowUpdated
