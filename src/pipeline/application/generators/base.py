"""What every synthetic event generator yields, and the shape a generator has.

A generator is a pure function of a seed and a start time: the same seed, start and settings
give the same stream, byte for byte, because it draws only from its own `random.Random`
instances and never from the wall clock or the global random state. That makes a demo, a
benchmark or a detector evaluation reproducible from two numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyLabel:
    """Ground truth for an event a generator made anomalous on purpose.

    Every event of one injected anomaly (a spike, the readings of a stuck sensor, …) carries
    the same `anomaly_id`, so a detector can be scored per anomaly as well as per event."""

    kind: str
    """What was injected; each generator names its kinds (`spike`, `stuck`, `drift`, …)."""
    anomaly_id: str
    """Identifies the injected anomaly, unique within one generated stream."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Generated(Generic[T]):
    """One generated event and its ground-truth label (None for a normal event)."""

    event: T
    label: AnomalyLabel | None = None

    @property
    def is_anomalous(self) -> bool:
        """Whether the generator injected an anomaly into this event."""
        return self.label is not None


class EventGenerator(Protocol[T]):
    """A seeded, reproducible, infinite stream of synthetic events of one domain.

    Callers bound it with `itertools.islice`. Domain-specific settings are extra keyword
    arguments with defaults, so every generator can be called through this signature."""

    def __call__(self, *, seed: int, start: datetime) -> Iterator[Generated[T]]:
        """The events of stream `seed`, in roughly increasing event time from `start`."""
        ...
