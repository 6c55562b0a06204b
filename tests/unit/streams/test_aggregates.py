"""Aggregates: merging two accumulators equals one pass; TopK and DistinctCount."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.streams import (
    Aggregate,
    Aggregates,
    Collect,
    Count,
    DistinctCount,
    Max,
    Mean,
    Min,
    Stats,
    Sum,
    TopK,
)


@dataclass(frozen=True)
class Pair:
    n: int
    top: float | None


EXACT: dict[str, Aggregate[int, Any, Any]] = {
    "count": Count(where=lambda v: v % 2 == 0),
    "sum": Sum(of=float),
    "min": Min(),
    "max": Max(),
    "collect": Collect(limit=5),
    "top_k": TopK(3, of=lambda v: v % 7),
    "top_k_weighted": TopK(2, of=lambda v: v % 5, weight=lambda v: v),
    "distinct": DistinctCount(of=lambda v: v % 11),
    "distinct_approximate": DistinctCount(approximate=True, precision=4),
    "distinct_approximate_12": DistinctCount(of=lambda v: v % 300, approximate=True),
    "aggregates": Aggregates(into=Pair, n=Count(), top=Max()),
}

values = st.lists(st.integers(min_value=-1000, max_value=1000), max_size=60)


def fold(aggregate: Aggregate[int, Any, Any], xs: list[int]) -> Any:
    acc = aggregate.initial()
    for x in xs:
        acc = aggregate.add(acc, x)
    return acc


@pytest.mark.parametrize("name", sorted(EXACT))
@given(xs=values, ys=values)
def test_merging_two_accumulators_equals_one_pass_over_both(
    name: str, xs: list[int], ys: list[int]
) -> None:
    aggregate = EXACT[name]
    merged = aggregate.merge(fold(aggregate, xs), fold(aggregate, ys))
    assert aggregate.result(merged) == aggregate.result(fold(aggregate, xs + ys))


@given(xs=values, ys=values)
def test_merged_hyperloglog_registers_equal_one_pass_registers(
    xs: list[int], ys: list[int]
) -> None:
    sketch = DistinctCount[int](approximate=True, precision=4)
    merged = sketch.merge(fold(sketch, xs), fold(sketch, ys))
    assert merged == fold(sketch, xs + ys)


@pytest.mark.parametrize("aggregate", [Stats(), Mean()], ids=["stats", "mean"])
@given(xs=values, ys=values)
def test_merging_running_statistics_equals_one_pass_up_to_rounding(
    aggregate: Aggregate[int, Any, Any], xs: list[int], ys: list[int]
) -> None:
    merged = aggregate.result(aggregate.merge(fold(aggregate, xs), fold(aggregate, ys)))
    single = aggregate.result(fold(aggregate, xs + ys))
    if single is None:
        assert merged is None
    elif isinstance(single, float):
        assert math.isclose(merged, single, rel_tol=1e-9, abs_tol=1e-9)
    else:
        for field in ("count", "mean", "stddev", "min", "max", "m2"):
            assert math.isclose(
                getattr(merged, field), getattr(single, field), rel_tol=1e-9, abs_tol=1e-6
            )


@given(st.permutations(["b", "a", "c", "a", "c", "b", "d"]))
def test_top_k_breaks_ties_by_item_whatever_the_arrival_order(tags: list[str]) -> None:
    assert TopK[str, str](2).result(fold_any(TopK(2), tags)) == [("a", 2), ("b", 2)]


def test_top_k_ranks_by_summed_weight_when_given_one() -> None:
    top = TopK[tuple[str, int], str](1, of=lambda e: e[0], weight=lambda e: e[1])
    assert top.result(fold_any(top, [("a", 5), ("b", 3), ("b", 3)])) == [("b", 6)]


def test_top_k_orders_tied_items_that_cannot_be_compared_by_their_repr() -> None:
    top = TopK[object, object](3)
    assert top.result(fold_any(top, [None, "x", 1])) == [("x", 1), (1, 1), (None, 1)]


def test_top_k_needs_a_positive_k() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        TopK(0)


@pytest.mark.parametrize("n", [300, 1_000, 10_000, 100_000])
def test_approximate_distinct_count_is_within_three_standard_errors(n: int) -> None:
    sketch = DistinctCount[int](approximate=True)
    estimate = sketch.result(fold_any(sketch, range(n)))
    assert abs(estimate - n) / n < 3 * 1.04 / math.sqrt(4096)


def test_approximate_distinct_count_is_exact_while_it_keeps_hashes() -> None:
    sketch = DistinctCount[str](approximate=True)
    acc = fold_any(sketch, [f"user-{i % 200}" for i in range(1000)])
    assert isinstance(acc, set)
    assert sketch.result(acc) == 200


def test_approximate_distinct_count_holds_fixed_size_registers_for_many_items() -> None:
    sketch = DistinctCount[int](approximate=True, precision=12)
    assert len(fold_any(sketch, range(50_000))) == 4096


def test_distinct_count_refuses_a_precision_out_of_range() -> None:
    with pytest.raises(ValueError, match="precision"):
        DistinctCount(approximate=True, precision=20)


def fold_any(aggregate: Any, xs: Any) -> Any:
    acc = aggregate.initial()
    for x in xs:
        acc = aggregate.add(acc, x)
    return acc
