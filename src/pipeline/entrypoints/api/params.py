"""Query and path parameter types shared by the routes, and the helpers that turn parameter
values into what the store expects (UTC datetimes, alert cursors)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated

from litestar.exceptions import ValidationException
from litestar.params import PathParameter, QueryParameter
from litestar.typing import FieldDefinition

from pipeline.application.ports import AlertPosition
from pipeline.domain.sensors import DEFAULT_CATALOG
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
KNOWN_SENSOR_TYPES = sorted(kind.name for kind in DEFAULT_CATALOG)
"""The sensor types a `sensor_type` parameter may name (the sensor catalog's)."""
SensorType = Annotated[
    str | None,
    QueryParameter(description="Only this sensor type.", enum=KNOWN_SENSOR_TYPES),
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

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
CURSOR_PATTERN = r"^-?[0-9]{1,20}_[0-9a-f]{32}$"
"""The shape of an alert cursor (see `encode_cursor`), as documented in the OpenAPI schema."""
_CURSOR = re.compile(r"(?P<micros>-?[0-9]{1,20})_(?P<alert_id>[0-9a-f]{32})")


def known_sensor_type(value: str | None) -> str | None:
    """`value` when it names a sensor type of the catalog (or is None); otherwise a 400 that
    lists the known types, as the live view's refusal does."""
    if value is not None and value not in DEFAULT_CATALOG:
        known = ", ".join(KNOWN_SENSOR_TYPES)
        raise bad_parameter(
            "sensor_type", f"unknown sensor type {value[:50]!r}; known types: {known}"
        )
    return value


_IN_WORDS: dict[object, str] = {
    bool: "must be true or false",
    uuid.UUID: "must be a UUID, e.g. 0b8e3c52-5b7e-4c4f-9b1a-6d2f0e9a7c31",
}


def expected(parameter: FieldDefinition) -> str | None:
    """What `parameter` accepts, in words (for a value Litestar's validation refused), or
    None when there is nothing clearer to say than the validator's own message."""
    kinds = [t.annotation for t in parameter.inner_types] if parameter.is_optional else []
    kind = next((k for k in kinds if k is not type(None)), parameter.annotation)
    rules = parameter.kwarg_definition
    if kind is int:
        low, high = getattr(rules, "ge", None), getattr(rules, "le", None)
        bounds = f" from {low:g} to {high:g}" if low is not None and high is not None else ""
        return f"must be a whole number{bounds}"
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "must be one of: " + ", ".join(str(member.value) for member in kind)
    if kind is str and getattr(rules, "pattern", None) == _IDENT:
        high = getattr(rules, "max_length", None) or _IDENT_MAX
        return f"must be 1 to {high} characters, with no control characters"
    return _IN_WORDS.get(kind)


class BadParameter(ValidationException):
    """A parameter value the API refuses for a reason of its own (its message is already
    in words), shaped like Litestar's own validation errors."""


def bad_parameter(name: str, message: str, *, source: str = "query") -> BadParameter:
    """A 400 naming the parameter (by the name clients use) and saying what is wrong."""
    return BadParameter(
        f"{name}: {message}", extra=[{"key": name, "source": source, "message": message}]
    )


def parse_time(value: str | None, name: str) -> datetime | None:
    """The time `value` gives (ISO 8601; without an offset, UTC) in UTC, or a 400 naming
    parameter `name`. Parsed here rather than by the validator, which would also take a
    number as seconds since the epoch: the OpenAPI document says a date-time string."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_parameter(name, "must be a time in ISO 8601, e.g. 2026-11-25T12:00:00Z") from None
    return as_utc(parsed)


def time_parameter(description: str, *, name: str | None = None) -> QueryParameter:
    """A query parameter holding a time (see `parse_time`), documented as a date-time."""
    return QueryParameter(
        name=name,
        description=f"{description} ISO 8601; without an offset, UTC.",
        format="date-time",
    )


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a time without offset is taken as UTC. A time whose UTC instant lies
    past what a datetime holds (year 1 with a positive offset, year 9999 with a negative one)
    becomes the earliest or latest datetime, which selects the same as a bound."""
    if value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return EARLIEST if value.year < 5000 else LATEST


def earlier(moment: datetime, span: timedelta) -> datetime:
    """`span` before `moment`, or the earliest datetime when that is before year 1."""
    try:
        return moment - span
    except OverflowError:
        return EARLIEST


def encode_cursor(position: AlertPosition) -> str:
    """The cursor of the page after `position`: `<epoch microseconds>_<alert id hex>`.
    Clients pass it back unchanged; any string of that shape is a position."""
    return f"{to_epoch_micros(position.timestamp)}_{position.alert_id.hex}"


def decode_cursor(cursor: str) -> AlertPosition:
    """The position `cursor` stands for (a time past what a datetime holds is the earliest or
    latest one), or a 400 when it does not have the shape of a cursor."""
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise bad_parameter("cursor", "not a cursor returned by this API")
    micros = int(match["micros"])
    try:
        timestamp = from_epoch_micros(micros)
    except OverflowError:
        timestamp = EARLIEST if micros < 0 else LATEST
    return AlertPosition(timestamp, uuid.UUID(hex=match["alert_id"]))
