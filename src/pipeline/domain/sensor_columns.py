"""Readings a batch at a time: the row a reading arrives as, and the sensor rules applied
column-wise over a batch of rows.

The hot path of the sensors job never builds a `Reading` for a reading that breaks no rule
and raises no alert: it carries `ReadingRow`s (a tuple, built in a fraction of a frozen
dataclass's time) and asks, once per batch and column by column, which rows *may* break a
rule (`suspect_rows`) or cross a limit (`crosses`). Only those rows become `Reading`s and
meet the domain's own functions, `validate_reading` and `check_threshold`, which stay the
single source of truth: the column-wise checks only decide who is asked, and a row they
let through is one the domain accepts (proven by the property tests of
`tests/unit/test_sensor_columns.py`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, cast

from pipeline.domain.alerts import Threshold
from pipeline.domain.errors import DomainError
from pipeline.domain.sensors import (
    DEFAULT_CATALOG,
    DEFAULT_MAX_CLOCK_SKEW,
    Reading,
    SensorCatalog,
    require_well_formed,
)

_ZERO = timedelta(0)


class ReadingRow(NamedTuple):
    """A reading as it comes off the wire, not yet validated: `Reading`'s fields, in its
    order, as a tuple (attribute names alike, so a rule reading `r.value` reads either)."""

    sensor_id: str
    sensor_type: str
    value: float
    unit: str
    timestamp: datetime
    location: str
    battery_level: float | None = None
    signal_strength: float | None = None


ReadingLike = Reading | ReadingRow
"""A reading either way: the sinks and steps of the sensors job take both."""


def reading_of(row: ReadingLike) -> Reading:
    """The domain's `Reading` of a row (a `Reading` is returned as it is)."""
    if isinstance(row, Reading):
        return row
    return Reading(
        sensor_id=row.sensor_id,
        sensor_type=row.sensor_type,
        value=row.value,
        unit=row.unit,
        timestamp=row.timestamp,
        location=row.location,
        battery_level=row.battery_level,
        signal_strength=row.signal_strength,
    )


def row_of(reading: Reading) -> ReadingRow:
    """The row of a reading."""
    return ReadingRow(
        reading.sensor_id,
        reading.sensor_type,
        reading.value,
        reading.unit,
        reading.timestamp,
        reading.location,
        reading.battery_level,
        reading.signal_strength,
    )


def suspect_rows(
    rows: Sequence[ReadingLike],
    now: datetime,
    *,
    catalog: SensorCatalog = DEFAULT_CATALOG,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> list[int]:
    """The indexes (ascending) of the rows that may break a rule of `validate_reading`,
    checked column by column: identifiers and (type, unit) pairs once per distinct value,
    times against the batch's latest, values and levels in one pass each. Every row the
    domain would reject is among them; a row is only there if the domain rejects it."""
    if not rows:
        return []
    ids, types, values, units, times, locations, batteries, signals = _columns(rows)
    suspects: set[int] = set()
    bad_ids = {s for s in set(ids) if not _well_formed(s)}
    if bad_ids:
        suspects.update(i for i, s in enumerate(ids) if s in bad_ids)
    bad_locations = {s for s in set(locations) if not _well_formed(s)}
    if bad_locations:
        suspects.update(i for i, s in enumerate(locations) if s in bad_locations)
    # The physically possible range per (type, unit) pair; None: unknown type, wrong unit.
    ranges: dict[tuple[str, str], tuple[float, float] | None] = {}
    for pair in set(zip(types, units, strict=True)):
        kind = catalog.kinds.get(pair[0])
        ranges[pair] = (
            None if kind is None or kind.unit != pair[1] else (kind.physical_min, kind.physical_max)
        )
    bounds = [ranges[pair] for pair in zip(types, units, strict=True)]
    suspects.update(
        i
        for i, (value, bound) in enumerate(zip(values, bounds, strict=True))
        # value - value is 0.0 for every finite float, NaN for NaN and the infinities.
        if bound is None or not (bound[0] <= value <= bound[1]) or value - value != 0.0
    )
    suspects.update(_suspect_times(times, now, max_clock_skew))
    suspects.update(_outside(batteries, 0.0, 100.0))
    suspects.update(_outside(signals, -150.0, 0.0))
    return sorted(suspects)


@functools.lru_cache(maxsize=1024)
def alert_bounds(limit: Threshold) -> tuple[float, float]:
    """(lower, upper): `check_threshold` raises an alert for a value exactly when it is below
    lower or above upper — the highest of the low bounds, the lowest of the high ones (the
    infinities where a side has none)."""
    lows = [b for b in (limit.low, limit.critical_low) if b is not None]
    highs = [b for b in (limit.high, limit.critical_high) if b is not None]
    return (max(lows, default=-math.inf), min(highs, default=math.inf))


def crosses(value: float, limit: Threshold | None) -> bool:
    """Whether `check_threshold` raises an alert for a reading of `value` against `limit`."""
    if limit is None:
        return False
    lower, upper = alert_bounds(limit)
    return value < lower or value > upper


_Columns = tuple[
    tuple[str, ...],
    tuple[str, ...],
    tuple[float, ...],
    tuple[str, ...],
    tuple[datetime, ...],
    tuple[str, ...],
    tuple[float | None, ...],
    tuple[float | None, ...],
]


def _columns(rows: Sequence[ReadingLike]) -> _Columns:
    """The rows transposed (a Reading among them taken as its row)."""
    if not all(type(r) is ReadingRow for r in rows):
        rows = [r if isinstance(r, ReadingRow) else row_of(r) for r in rows]
    return cast("_Columns", tuple(zip(*rows, strict=True)))


def _well_formed(identifier: object) -> bool:
    """Whether an identifier passes the domain's identifier rules."""
    if not isinstance(identifier, str) or not identifier.strip():
        return False
    try:
        require_well_formed("identifier", identifier)
    except DomainError:
        return False
    return True


def _suspect_times(times: Sequence[object], now: datetime, skew: timedelta) -> list[int]:
    """Indexes of the times that are not UTC (as `require_utc` judges) or too far ahead."""
    utc = [_is_utc(moment) for moment in times]
    suspects = [i for i, ok in enumerate(utc) if not ok]
    try:
        latest = now + skew
    except OverflowError:  # no event time can be that far ahead
        return suspects
    ahead = [moment for moment, ok in zip(times, utc, strict=True) if ok]
    if ahead and max(cast("list[datetime]", ahead)) > latest:
        suspects.extend(
            i
            for i, (moment, ok) in enumerate(zip(times, utc, strict=True))
            if ok and cast("datetime", moment) > latest
        )
    return suspects


def _is_utc(moment: object) -> bool:
    # datetime.UTC itself is the common case; another zone may be UTC (or be so in winter
    # only), as its offset at that moment says.
    return isinstance(moment, datetime) and (
        moment.tzinfo is UTC or (moment.tzinfo is not None and moment.utcoffset() == _ZERO)
    )


def _outside(levels: Iterable[object], low: float, high: float) -> list[int]:
    """Indexes of the levels that are present and not finite within [low, high]."""
    return [
        i
        for i, level in enumerate(levels)
        if level is not None and not (isinstance(level, float | int) and low <= level <= high)
    ]
