"""What every synthetic event generator yields, and the shape a generator has.

A generator is a pure function of a seed and a start time: the same seed, start and settings
give the same stream, byte for byte, because it draws only from its own `random.Random`
instances and never from the wall clock or the global random state. That makes a demo, a
benchmark or a detector evaluation reproducible from two numbers.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from pipeline.application.errors import ConfigurationError

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
    subject: str | None = None
    """What the anomaly is about when the event does not say it alone (the hashtag of a
    burst, the account of a fraud), else None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Generated(Generic[T]):
    """One generated event and its ground-truth label (None for a normal event)."""

    event: T
    label: AnomalyLabel | None = None

    @property
    def is_anomalous(self) -> bool:
        """Whether the generator injected an anomaly into this event."""
        return self.label is not None


@dataclass(frozen=True, slots=True)
class Lane:
    """Lane `index` of `of`: the share of a stream whose keyed entities (shop sessions,
    accounts, posts) are numbered `index` + 1 modulo `of`.

    A lane draws only its own entities, at `1 / of` of the stream's rate, from a random
    stream of its own; what spans entities (a catalogue, a checkout outage, the hashtag
    ranking and bursts, how many accounts there are) is drawn from the seed alone, the same
    in every lane; users and authors keep no state, so every lane draws them from all. So
    the `of` lanes of a seed, generated apart (in as many processes) and merged by event
    time, are one stream, and each entity's events come from one lane. Lane 0 of 1 is the
    whole stream."""

    index: int = 0
    of: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.of:
            raise ConfigurationError(f"lane {self.index} of {self.of} does not exist")

    def rng(self, name: str) -> random.Random:
        """The lane's own random stream of `name` (a seeded name)."""
        return random.Random(name if self.of == 1 else f"{name}/lane/{self.index}/{self.of}")

    def shared(self, own: random.Random, name: str) -> random.Random:
        """The random stream of what spans the lanes: seeded by `name` alone, the same in
        every lane; the whole stream draws it from its `own`, as it always has (so a seed's
        whole stream is what it was before lanes)."""
        return own if self.of == 1 else random.Random(name)

    def number(self, nth: int) -> int:
        """The number (from 1) of the lane's `nth` entity (from 0) of a kind: stream-wide
        unique, `index + 1` modulo `of`."""
        return nth * self.of + self.index + 1

    def own(self, number: int, total: int) -> int:
        """The lane's entity nearest below `number` (0-based, of `total`), so that a
        lane draws its entities with the stream's distribution over them."""
        owned = number - number % self.of + self.index
        if owned >= total:
            owned -= self.of
        if owned < 0:
            raise ConfigurationError(f"{total} entities cannot be shared by {self.of} lanes")
        return owned


WHOLE_STREAM = Lane()
"""Lane 0 of 1: a generator's default, its whole stream."""


class EventGenerator(Protocol[T]):
    """A seeded, reproducible, infinite stream of synthetic events of one domain.

    Callers bound it with `itertools.islice`. Domain-specific settings are extra keyword
    arguments with defaults, so every generator can be called through this signature."""

    def __call__(self, *, seed: int, start: datetime) -> Iterator[Generated[T]]:
        """The events of stream `seed`, in roughly increasing event time from `start`."""
        ...


LABEL_KIND_HEADER = "label.kind"
LABEL_ID_HEADER = "label.anomaly_id"
LABEL_SUBJECT_HEADER = "label.subject"


def label_headers(label: AnomalyLabel | None) -> list[tuple[str, bytes]]:
    """The record headers that carry `label` on the wire (none for a normal event), so
    that a detector's output can be scored against the ground truth without the label
    being part of the event its rules see."""
    if label is None:
        return []
    headers = [
        (LABEL_KIND_HEADER, label.kind.encode()),
        (LABEL_ID_HEADER, label.anomaly_id.encode()),
    ]
    if label.subject is not None:
        headers.append((LABEL_SUBJECT_HEADER, label.subject.encode()))
    return headers


def label_from_headers(headers: Sequence[tuple[str, bytes | None]]) -> AnomalyLabel | None:
    """The label `label_headers` put on a record, or None if it carries none."""
    found = {name: value.decode() for name, value in headers if value is not None}
    if LABEL_KIND_HEADER not in found or LABEL_ID_HEADER not in found:
        return None
    return AnomalyLabel(
        kind=found[LABEL_KIND_HEADER],
        anomaly_id=found[LABEL_ID_HEADER],
        subject=found.get(LABEL_SUBJECT_HEADER),
    )
