"""Specification of a valid sensor reading and of the sensor catalog."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.domain import (
    DEFAULT_CATALOG,
    HUMIDITY,
    PRESSURE,
    TEMPERATURE,
    BatteryLevelOutOfRange,
    DomainError,
    EventTimeInFuture,
    EventTimeNotUtc,
    InvalidReading,
    MissingIdentifier,
    Reading,
    ReadingOutOfRange,
    SensorCatalog,
    SensorKind,
    SignalStrengthOutOfRange,
    UnitMismatch,
    UnknownSensorType,
    validate_reading,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def a_reading(**changes: Any) -> Reading:
    """A valid temperature reading taken one second before NOW, with `changes` applied."""
    reading = Reading(
        sensor_id="temp-0001",
        sensor_type=TEMPERATURE,
        value=21.5,
        unit="celsius",
        timestamp=NOW - timedelta(seconds=1),
        location="site-01/floor-2",
        battery_level=87.0,
        signal_strength=-70.0,
    )
    return dataclasses.replace(reading, **changes)


def test_a_well_formed_reading_is_returned_unchanged() -> None:
    reading = a_reading()

    assert validate_reading(reading, now=NOW) is reading


@pytest.mark.parametrize(
    ("sensor_type", "unit", "value"),
    [(TEMPERATURE, "celsius", -5.0), (HUMIDITY, "percent", 55.0), (PRESSURE, "hPa", 1013.2)],
)
def test_every_default_sensor_type_is_accepted_in_its_unit(
    sensor_type: str, unit: str, value: float
) -> None:
    reading = a_reading(sensor_type=sensor_type, unit=unit, value=value)

    assert validate_reading(reading, now=NOW) is reading


def test_unknown_sensor_type_is_rejected_naming_the_known_types() -> None:
    with pytest.raises(UnknownSensorType, match="known types: humidity, pressure, temperature"):
        validate_reading(a_reading(sensor_type="radiation"), now=NOW)


def test_unit_of_another_type_is_a_unit_mismatch() -> None:
    with pytest.raises(UnitMismatch, match="'fahrenheit'"):
        validate_reading(a_reading(unit="fahrenheit"), now=NOW)


@pytest.mark.parametrize(
    ("sensor_type", "unit", "value"),
    [
        (TEMPERATURE, "celsius", -273.16),
        (TEMPERATURE, "celsius", 1000.01),
        (HUMIDITY, "percent", -0.1),
        (HUMIDITY, "percent", 100.1),
        (PRESSURE, "hPa", -1.0),
        (PRESSURE, "hPa", 10_000.5),
    ],
)
def test_physically_impossible_value_is_out_of_range(
    sensor_type: str, unit: str, value: float
) -> None:
    with pytest.raises(ReadingOutOfRange):
        validate_reading(a_reading(sensor_type=sensor_type, unit=unit, value=value), now=NOW)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_value_is_out_of_range(value: float) -> None:
    with pytest.raises(ReadingOutOfRange):
        validate_reading(a_reading(value=value), now=NOW)


@pytest.mark.parametrize("value", [-273.15, 1000.0])
def test_physical_limits_themselves_are_possible(value: float) -> None:
    reading = a_reading(value=value)

    assert validate_reading(reading, now=NOW) is reading


def test_event_time_beyond_the_clock_skew_is_in_the_future() -> None:
    reading = a_reading(timestamp=NOW + timedelta(minutes=5, seconds=1))

    with pytest.raises(EventTimeInFuture, match="ahead of the clock"):
        validate_reading(reading, now=NOW)


@pytest.mark.parametrize("ahead", [timedelta(seconds=1), timedelta(minutes=5)])
def test_event_time_ahead_within_the_clock_skew_is_accepted(ahead: timedelta) -> None:
    reading = a_reading(timestamp=NOW + ahead)

    assert validate_reading(reading, now=NOW) is reading


def test_clock_skew_is_configurable() -> None:
    reading = a_reading(timestamp=NOW + timedelta(seconds=10))

    with pytest.raises(EventTimeInFuture):
        validate_reading(reading, now=NOW, max_clock_skew=timedelta(seconds=5))


def test_old_event_time_is_accepted() -> None:
    reading = a_reading(timestamp=NOW - timedelta(days=365))

    assert validate_reading(reading, now=NOW) is reading


def test_naive_event_time_is_not_utc() -> None:
    naive = (NOW - timedelta(seconds=1)).replace(tzinfo=None)

    with pytest.raises(EventTimeNotUtc, match="no timezone"):
        validate_reading(a_reading(timestamp=naive), now=NOW)


def test_event_time_with_a_non_zero_offset_is_not_utc() -> None:
    berlin = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))

    with pytest.raises(EventTimeNotUtc, match="not in UTC"):
        validate_reading(a_reading(timestamp=berlin), now=NOW)


@pytest.mark.parametrize("battery", [-0.1, 100.1, math.nan, math.inf])
def test_battery_level_outside_0_to_100_percent_is_rejected(battery: float) -> None:
    with pytest.raises(BatteryLevelOutOfRange):
        validate_reading(a_reading(battery_level=battery), now=NOW)


@pytest.mark.parametrize("battery", [0.0, 100.0, None])
def test_battery_level_at_the_limits_or_unreported_is_accepted(battery: float | None) -> None:
    reading = a_reading(battery_level=battery)

    assert validate_reading(reading, now=NOW) is reading


@pytest.mark.parametrize("signal", [0.5, -150.5, math.nan, -math.inf])
def test_signal_strength_outside_minus_150_to_0_dbm_is_rejected(signal: float) -> None:
    with pytest.raises(SignalStrengthOutOfRange):
        validate_reading(a_reading(signal_strength=signal), now=NOW)


@pytest.mark.parametrize("signal", [0.0, -150.0, None])
def test_signal_strength_at_the_limits_or_unreported_is_accepted(signal: float | None) -> None:
    reading = a_reading(signal_strength=signal)

    assert validate_reading(reading, now=NOW) is reading


@pytest.mark.parametrize("field", ["sensor_id", "location"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_identifier_is_missing(field: str, blank: str) -> None:
    with pytest.raises(MissingIdentifier, match=field):
        validate_reading(a_reading(**{field: blank}), now=NOW)


def test_reading_errors_carry_their_rule_name_and_belong_to_the_tree() -> None:
    with pytest.raises(ReadingOutOfRange) as caught:
        validate_reading(a_reading(value=math.nan), now=NOW)

    assert caught.value.rule == "reading_out_of_range"
    assert isinstance(caught.value, InvalidReading)
    assert isinstance(caught.value, DomainError)


def test_reading_key_is_sensor_and_event_time() -> None:
    reading = a_reading()

    assert reading.key == ("temp-0001", NOW - timedelta(seconds=1))


RADIATION = SensorKind(name="radiation", unit="uSv/h", physical_min=0.0, physical_max=1e6)


def test_catalog_with_a_new_kind_accepts_that_type() -> None:
    catalog = DEFAULT_CATALOG.with_kind(RADIATION)
    reading = a_reading(sensor_type="radiation", unit="uSv/h", value=0.12)

    assert validate_reading(reading, now=NOW, catalog=catalog) is reading
    assert "radiation" in catalog
    assert TEMPERATURE in catalog


def test_with_kind_leaves_the_original_catalog_unchanged() -> None:
    DEFAULT_CATALOG.with_kind(RADIATION)

    assert "radiation" not in DEFAULT_CATALOG
    with pytest.raises(UnknownSensorType):
        validate_reading(a_reading(sensor_type="radiation", unit="uSv/h"), now=NOW)


def test_with_kind_replaces_a_kind_of_the_same_name() -> None:
    fahrenheit = SensorKind(
        name=TEMPERATURE, unit="fahrenheit", physical_min=-459.67, physical_max=1832.0
    )
    catalog = DEFAULT_CATALOG.with_kind(fahrenheit)

    assert catalog.kind(TEMPERATURE).unit == "fahrenheit"
    with pytest.raises(UnitMismatch):
        validate_reading(a_reading(), now=NOW, catalog=catalog)


def test_catalog_of_holds_exactly_the_given_kinds() -> None:
    catalog = SensorCatalog.of([RADIATION])

    assert [kind.name for kind in catalog] == ["radiation"]
    assert TEMPERATURE not in catalog


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sensor_id", "temp\x000001"),
        ("sensor_id", "t" * 201),
        ("location", "site-01\nfloor-2"),
        ("location", "x" * 201),
    ],
)
def test_identifier_with_control_characters_or_too_long_is_malformed(
    field: str, value: str
) -> None:
    from dataclasses import replace  # noqa: PLC0415

    from pipeline.domain import MalformedIdentifier  # noqa: PLC0415

    base = Reading(
        sensor_id="temp-0001", sensor_type="temperature", value=20.0, unit="celsius",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC), location="site-01/floor-2",
    )  # fmt: skip

    with pytest.raises(MalformedIdentifier, match=field):
        validate_reading(replace(base, **{field: value}), now=datetime(2026, 1, 1, tzinfo=UTC))
