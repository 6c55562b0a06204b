"""Query and path parameter types shared by the routes, and the helpers that turn parameter
values into what the store expects (UTC datetimes, alert cursors)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated

from litestar.exceptions import ValidationException
from litestar.params import PathParameter, QueryParameter

from pipeline.application.ports import AlertPosition
from pipeline.domain.time import from_epoch_micros, to_epoch_micros

# Identifiers are free text in the domain, but no control characters: PostgreSQL rejects NUL
# in text, and nothing legitimate contains them.
_IDENT = r"^[^\x00-\x1f\x7f]+$"
_IDENT_MAX = 200

SensorId = Annotated[
    str | None,
    QueryParameter(
        description="Only this sensor.", min_length=1, max_length=_IDENT_MAX, pattern=_IDENT
    ),
]
SensorType = Annotated[
    str | None,
    QueryParameter(
        description="Only this sensor type (temperature, humidity, pressure, …).",
        min_length=1,
        max_length=_IDENT_MAX,
        pattern=_IDENT,
    ),
]
Source = Annotated[
    str | None,
    QueryParameter(
        description="Only alerts about this source (a sensor id).",
        min_length=1,
        max_length=_IDENT_MAX,
        pattern=_IDENT,
    ),
]
PathSensorId = Annotated[
    str, PathParameter(description="The sensor.", max_length=_IDENT_MAX, pattern=_IDENT)
]

# Far enough from datetime's limits that adding a window or converting a time zone cannot
# overflow.
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def bad_parameter(name: str, message: str, *, source: str = "query") -> ValidationException:
    """A 400 naming the parameter, shaped like Litestar's own validation errors."""
    return ValidationException(
        f"{name}: {message}", extra=[{"key": name, "source": source, "message": message}]
    )


def as_utc(value: datetime | None, name: str) -> datetime | None:
    """`value` in UTC; a time without offset is taken as UTC. Times outside 1900–9000 are a
    bad parameter."""
    if value is None:
        return None
    if value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    out_of_bounds = bad_parameter(name, "must be a time between the years 1900 and 9000")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise out_of_bounds from None
    if not _EARLIEST <= value < _LATEST:
        raise out_of_bounds
    return value


def encode_cursor(position: AlertPosition) -> str:
    """The opaque cursor of the page after `position`."""
    text = f"{to_epoch_micros(position.timestamp)}:{position.alert_id.hex}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> AlertPosition:
    """The position `cursor` stands for, or a 400 when it is not a cursor this API issued."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, alert_id = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        timestamp = from_epoch_micros(int(micros))
        position = AlertPosition(timestamp, uuid.UUID(hex=alert_id))
    except (ValueError, TypeError, binascii.Error, OverflowError, UnicodeError) as exc:
        raise bad_parameter("cursor", "not a cursor returned by this API") from exc
    as_utc(position.timestamp, "cursor")
    return position
