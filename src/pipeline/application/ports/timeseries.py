"""A time-series database: points (measurement, tags, fields, time) written in batches.

Writes are idempotent: a point is named by its measurement, its tags and its time (to the
millisecond), and writing a point with the same name again replaces its fields instead of
adding a second point. That is what lets a job write its points before its batch's
checkpoint commits, and write them again when the batch is replayed after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

FieldValue = float | int | bool | str
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """One point of a series: `measurement` and `tags` name the series, `time` (timezone
    aware; kept to the millisecond) the point in it, `fields` its values."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time: datetime

    @property
    def millis(self) -> int:
        """`time` in epoch milliseconds (exact: no float rounding)."""
        return (self.time - _EPOCH) // _MILLISECOND

    def identity(self) -> tuple[str, tuple[tuple[str, str], ...], int]:
        """What names the point: measurement, sorted tags, epoch milliseconds."""
        return self.measurement, tuple(sorted(self.tags.items())), self.millis


@runtime_checkable
class TimeSeries(Protocol):
    """Where a job's points are stored (InfluxDB, or in memory)."""

    async def write(self, points: Sequence[Point]) -> None:
        """Store the points (a point named like a stored one replaces its fields); raise
        TimeSeriesUnavailable when the server cannot be reached or keeps failing,
        TimeSeriesRejected when it refuses the points themselves."""
        ...

    async def ping(self) -> None:
        """Return when the server answers; raise TimeSeriesUnavailable when it does not."""
        ...

    async def close(self) -> None:
        """Release the connections (safe to call twice)."""
        ...
