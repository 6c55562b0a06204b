"""Window kinds: which windows of event time a record belongs to, and when each closes.

    Tumbling(size, grace)           fixed, non-overlapping: [k·size, (k+1)·size)
    Hopping(size, advance, grace)   fixed, overlapping: a window starts every `advance`
    Sliding(size, grace)            one window per record: the `size` of time ending at it
    Session(gap, grace)             per key, records closer than `gap` share a session;
                                    a record bridging two sessions merges them

A window closes when the task's watermark reaches its end plus `grace` (for a session, its
last record plus `gap` plus `grace`, since until then a record could still extend it). A
record for a closed window is late: it goes to the late side output, never into a result.
Grace is always explicit (Kafka Streams' KIP-633 removed its 24-hour default for a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pipeline.streams.items import duration_millis


@dataclass(frozen=True, slots=True)
class Tumbling:
    """Fixed windows of `size`, aligned to the epoch, that do not overlap."""

    size: timedelta
    grace: timedelta

    def __post_init__(self) -> None:
        if duration_millis(self.size) <= 0:
            raise ValueError("a tumbling window needs a positive size")
        duration_millis(self.grace)


@dataclass(frozen=True, slots=True)
class Hopping:
    """Fixed windows of `size` starting every `advance` (aligned to the epoch): a record
    belongs to size/advance windows."""

    size: timedelta
    advance: timedelta
    grace: timedelta

    def __post_init__(self) -> None:
        size, advance = duration_millis(self.size), duration_millis(self.advance)
        if advance <= 0 or size <= 0:
            raise ValueError("a hopping window needs a positive size and advance")
        if advance > size:
            raise ValueError("a hopping window's advance cannot exceed its size (gaps)")
        duration_millis(self.grace)


@dataclass(frozen=True, slots=True)
class Sliding:
    """For every record, the window of `size` that ends at it (inclusive): a moving
    aggregate over the key's last `size` of event time, as of each record."""

    size: timedelta
    grace: timedelta

    def __post_init__(self) -> None:
        if duration_millis(self.size) <= 0:
            raise ValueError("a sliding window needs a positive size")
        duration_millis(self.grace)


@dataclass(frozen=True, slots=True)
class Session:
    """A key's records with less than `gap` of event time between neighbours form one
    session; a record that falls within `gap` of two sessions merges them."""

    gap: timedelta
    grace: timedelta

    def __post_init__(self) -> None:
        if duration_millis(self.gap) <= 0:
            raise ValueError("a session window needs a positive gap")
        duration_millis(self.grace)


WindowKind = Tumbling | Hopping | Sliding | Session
