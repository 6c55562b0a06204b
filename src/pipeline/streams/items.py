"""What flows between the steps of a job, and what leaves it.

Times inside the engine are integer milliseconds since the Unix epoch (event time and wall
clock alike): comparisons and window arithmetic on ints cost a fraction of datetime's, and
they are what Kafka timestamps are. The builder's public surface speaks `datetime` and
`timedelta`; `to_millis` and `from_millis` convert at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")
S = TypeVar("S")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_TIME = -(2**62)
"""Stream time of a partition that has seen no record yet."""


_ONE_MS = timedelta(milliseconds=1)


def to_millis(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of a tz-aware datetime, exactly (integer
    arithmetic, no float rounding); a naive datetime raises TypeError."""
    return (moment - _EPOCH) // _ONE_MS


@lru_cache(maxsize=4096)
def from_millis(millis: int) -> datetime:
    """The UTC datetime `millis` milliseconds after the Unix epoch. Cached: windows are
    aligned, so a batch's thousands of window results share a few distinct bounds."""
    return _EPOCH + timedelta(milliseconds=millis)


def duration_millis(duration: timedelta) -> int:
    """A non-negative duration in whole milliseconds."""
    millis = (duration.days * 86_400 + duration.seconds) * 1000 + duration.microseconds // 1000
    if millis < 0:
        raise ValueError(f"a duration cannot be negative: {duration}")
    return millis


class Item(Generic[K, V]):
    """One element between two steps: the source partition it belongs to (the task whose
    state it touches), its key, its event time, its value, the record it came from (opaque
    to the engine; the runtime dead-letters or re-routes by it) and the task's watermark when
    that record was read (what lateness is judged against, so that a batch boundary never
    changes a result)."""

    __slots__ = ("key", "origin", "part", "time", "value", "wm")

    def __init__(  # noqa: PLR0917 - built once per record per step: positional is cheaper
        self, part: int, key: K, time: int, value: V, origin: object, wm: int
    ) -> None:
        self.part = part
        self.key = key
        self.time = time
        self.value = value
        self.origin = origin
        self.wm = wm

    def with_value(self, value: R) -> Item[K, R]:
        """The same element carrying another value."""
        return Item(self.part, self.key, self.time, value, self.origin, self.wm)

    def __repr__(self) -> str:
        return f"Item(part={self.part}, key={self.key!r}, time={self.time}, value={self.value!r})"


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """A window of event time, [start, end) in milliseconds since the epoch."""

    start: int
    end: int

    @property
    def start_time(self) -> datetime:
        """The first instant of the window."""
        return from_millis(self.start)

    @property
    def end_time(self) -> datetime:
        """The first instant after the window."""
        return from_millis(self.end)


@dataclass(frozen=True, slots=True)
class Windowed(Generic[K, R]):
    """The result of aggregating one key's records in one window. `final` is True when the
    window has closed (its end plus grace is behind the watermark) and this is its last
    result; an update emitted earlier has `final` False."""

    key: K
    window: Window
    value: R
    final: bool


@dataclass(frozen=True, slots=True)
class KeyedBatch(Generic[K, S, V]):
    """What a `scan_batch` step's function gets: one batch's values, in order, and the
    state of every key they carry, one slot per key. `slots[i]` is the slot of
    `values[i]`'s key, in order of first appearance; `keys[j]` and `states[j]` are slot
    j's key and its state before the batch (None: the key has none yet). State is kept
    per source partition and key, so a key arriving from two partitions has two slots."""

    values: list[V]
    slots: list[int]
    keys: list[K]
    states: list[S | None]


@dataclass(frozen=True, slots=True)
class Tombstone(Generic[K]):
    """A table topic's record with a null value: it deletes `key` from the table. The runtime
    hands it to the task in place of a decoded value, with the key decoded from the
    record's key by the table's `record_key`."""

    key: K


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record a step refused (a validation rule broke, or the key or event time could not
    be taken from it): the runtime turns it into a dead letter with `rule` as its class,
    unless `dead_letter` is False (another job reading the topic dead-letters it: the
    runtime only counts it)."""

    origin: object
    step: str
    rule: str
    error: BaseException
    dead_letter: bool = True


@dataclass(frozen=True, slots=True)
class Late:
    """A record that arrived after the window it belongs to had closed."""

    origin: object
    step: str
    item: Item[object, object]
