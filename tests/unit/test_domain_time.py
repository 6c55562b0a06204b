"""Event-time helpers of the domain: window starts and exact epoch microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain import ONE_MINUTE, TEMPERATURE, Reading
from pipeline.domain.time import from_epoch_micros, to_epoch_micros, window_start

MINUTE_START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def a_reading(value: float, at: datetime, sensor_id: str = "temp-0001") -> Reading:
    return Reading(
        sensor_id=sensor_id,
        sensor_type=TEMPERATURE,
        value=value,
        unit="celsius",
        timestamp=at,
        location="site-01/floor-2",
    )


@pytest.mark.parametrize(
    ("moment", "start"),
    [
        (MINUTE_START, MINUTE_START),
        (MINUTE_START + timedelta(seconds=30), MINUTE_START),
        (MINUTE_START + timedelta(seconds=59, microseconds=999_999), MINUTE_START),
        (MINUTE_START + timedelta(minutes=1), MINUTE_START + timedelta(minutes=1)),
    ],
)
def test_window_starts_at_the_window_boundary_and_includes_it(
    moment: datetime, start: datetime
) -> None:
    assert window_start(moment, ONE_MINUTE) == start


def test_windows_are_aligned_to_the_epoch() -> None:
    moment = datetime(2026, 5, 1, 12, 7, 30, tzinfo=UTC)

    assert window_start(moment, timedelta(minutes=5)) == datetime(2026, 5, 1, 12, 5, tzinfo=UTC)
    assert window_start(moment, timedelta(hours=1)) == datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_window_start_works_before_the_epoch() -> None:
    moment = datetime(1969, 12, 31, 23, 59, 30, tzinfo=UTC)

    assert window_start(moment, ONE_MINUTE) == datetime(1969, 12, 31, 23, 59, tzinfo=UTC)


@given(st.integers(min_value=-(2**50), max_value=2**50))
def test_epoch_micros_round_trip_exactly(micros: int) -> None:
    assert to_epoch_micros(from_epoch_micros(micros)) == micros
