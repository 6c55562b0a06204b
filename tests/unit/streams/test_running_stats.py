"""The running statistics behind `Stats` and `Mean`: one pass, mergeable, exact enough."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.streams.aggregates import RunningStats

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
