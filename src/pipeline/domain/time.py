"""Event-time helpers: every timestamp in the domain is a tz-aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.domain.errors import DomainError, EventTimeNotUtc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def require_utc(
    moment: datetime,
    what: str = "event time",
    error: type[DomainError] = EventTimeNotUtc,
) -> datetime:
    """Return `moment` if it is tz-aware with a zero UTC offset, else raise `error`
    (EventTimeNotUtc, a reading error, unless the caller validates another kind of event)."""
    offset = moment.utcoffset()
    if offset is None:
        raise error(f"{what} {moment.isoformat()} has no timezone; UTC is required")
    if offset != timedelta(0):
        raise error(f"{what} {moment.isoformat()} is not in UTC")
    return moment


def to_epoch_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exact (no float rounding)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_micros(micros: int) -> datetime:
    """The UTC datetime `micros` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=micros)


def window_start(moment: datetime, size: timedelta) -> datetime:
    """Start of the tumbling event-time window of `size` that contains `moment`."""
    size_us = to_epoch_micros(EPOCH + size)
    micros = to_epoch_micros(moment)
    return from_epoch_micros(micros - micros % size_us)
