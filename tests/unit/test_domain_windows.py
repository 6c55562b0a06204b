"""Specification of event-time tumbling windows and their statistics."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain import ONE_MINUTE, TEMPERATURE, Reading, RunningStats, aggregate_window
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


def test_aggregate_counts_and_summarises_one_window() -> None:
    values = [20.0, 22.0, 27.0, 21.0]
    readings = [
        a_reading(v, MINUTE_START + timedelta(seconds=10 * i)) for i, v in enumerate(values)
    ]

    [window] = aggregate_window(readings)

    assert window.sensor_id == "temp-0001"
    assert window.sensor_type == TEMPERATURE
    assert (window.window_start, window.window_end) == (
        MINUTE_START,
        MINUTE_START + ONE_MINUTE,
    )
    assert (window.count, window.min, window.max) == (4, 20.0, 27.0)
    assert window.mean == pytest.approx(statistics.fmean(values))
    assert window.stddev == pytest.approx(statistics.pstdev(values))


def test_single_reading_has_zero_stddev() -> None:
    [window] = aggregate_window([a_reading(21.0, MINUTE_START)])

    assert (window.count, window.mean, window.stddev) == (1, 21.0, 0.0)


def test_readings_split_by_sensor_and_window_in_key_order() -> None:
    readings = [
        a_reading(1.0, MINUTE_START + timedelta(minutes=1), "temp-0002"),
        a_reading(2.0, MINUTE_START + timedelta(seconds=59), "temp-0001"),
        a_reading(3.0, MINUTE_START + timedelta(minutes=1), "temp-0001"),
        a_reading(4.0, MINUTE_START, "temp-0002"),
    ]

    windows = aggregate_window(readings)

    assert [(w.sensor_id, w.window_start, w.count) for w in windows] == [
        ("temp-0001", MINUTE_START, 1),
        ("temp-0001", MINUTE_START + ONE_MINUTE, 1),
        ("temp-0002", MINUTE_START, 1),
        ("temp-0002", MINUTE_START + ONE_MINUTE, 1),
    ]


def test_out_of_order_readings_aggregate_like_ordered_ones() -> None:
    ordered = [
        a_reading(float(i % 7), MINUTE_START + timedelta(seconds=i), f"temp-000{i % 3}")
        for i in range(180)
    ]
    shuffled = ordered[::-1][::2] + ordered[::-1][1::2]

    expected = aggregate_window(ordered)
    actual = aggregate_window(shuffled)

    assert [(w.sensor_id, w.window_start, w.count, w.min, w.max) for w in actual] == [
        (w.sensor_id, w.window_start, w.count, w.min, w.max) for w in expected
    ]
    assert [w.mean for w in actual] == pytest.approx([w.mean for w in expected])
    assert [w.stddev for w in actual] == pytest.approx([w.stddev for w in expected])


def test_custom_window_size_sets_window_end() -> None:
    [window] = aggregate_window([a_reading(1.0, MINUTE_START)], size=timedelta(seconds=10))

    assert window.window_end == MINUTE_START + timedelta(seconds=10)


values_lists = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    max_size=50,
)


def stats_of(values: list[float]) -> RunningStats:
    stats = RunningStats()
    for value in values:
        stats.add(value)
    return stats


@given(values_lists)
def test_running_stats_match_the_statistics_module(values: list[float]) -> None:
    stats = stats_of(values)

    assert stats.count == len(values)
    if values:
        assert (stats.min, stats.max) == (min(values), max(values))
        assert stats.mean == pytest.approx(statistics.fmean(values), rel=1e-9, abs=1e-6)
        assert stats.stddev == pytest.approx(statistics.pstdev(values), rel=1e-6, abs=1e-6)
    else:
        assert stats.stddev == 0.0


@given(values_lists, values_lists)
def test_merging_running_stats_equals_adding_all_values(
    left: list[float], right: list[float]
) -> None:
    merged = stats_of(left)
    merged.merge(stats_of(right))

    whole = stats_of(left + right)

    assert (merged.count, merged.min, merged.max) == (whole.count, whole.min, whole.max)
    assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-6)
    assert merged.stddev == pytest.approx(whole.stddev, rel=1e-6, abs=1e-6)


def test_empty_running_stats_report_no_spread() -> None:
    stats = RunningStats()

    assert (stats.count, stats.stddev, stats.min, stats.max) == (0, 0.0, math.inf, -math.inf)
