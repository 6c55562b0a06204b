"""Interval joins give the same committed output whatever the interleaving of the two
topics, the batch boundaries and the crash points.

First property — assumptions: grace (60 s) is at least the spread of all event times
(0–60 s), so no record is ever late whichever topic runs ahead; out-of-orderness is 0 and
the wall clock stands still until the end, when it moves a day on so that every interval
closes. The expected output is computed from the whole input at once: every pair of one
key within the interval, and for a left join every order without one, each exactly once.

Second property, with a grace short enough for records to be late: the committed output is
exactly the join of the records that were not committed as late — no pair of on-time
records is missed, no order is both matched and reported alone, nothing is emitted twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.streams.job import JoinHow
from pipeline.streams.testing import TestDriver
from tests.unit.streams.join_jobs import T0, order, orders_with_payments, payment

SPREAD_MS = 60_000
Timed = tuple[str, int]
"""(key, event time in ms after T0)"""


@dataclass(frozen=True)
class Scenario:
    how: JoinHow
    grace_ms: int
    before_ms: int
    after_ms: int
    orders: list[Timed]
    payments: list[Timed]
    sends: list[tuple[str, int]]
    """(topic, index) in the order the records are appended to their topics"""
    actions: list[str]
    """after each send: "wait", "run" (committed) or "crash" (run uncommitted, crash)"""
    batch_size: int


STEP_MS = 500
"""Times and spans are drawn in steps of half a second, so that records often fall on each
other's interval bounds."""


def _millis(top: int) -> st.SearchStrategy[int]:
    return st.integers(0, top // STEP_MS).map(lambda steps: steps * STEP_MS)


TIMED = st.tuples(st.sampled_from("abc"), _millis(SPREAD_MS - STEP_MS))


@st.composite
def scenarios(draw: st.DrawFn, grace_ms: st.SearchStrategy[int]) -> Scenario:
    orders = draw(st.lists(TIMED, max_size=10))
    payments = draw(st.lists(TIMED, max_size=10))
    sends = [("orders", i) for i in range(len(orders))]
    sends += [("payments", i) for i in range(len(payments))]
    sends = draw(st.permutations(sends))
    actions = draw(
        st.lists(
            st.sampled_from(["wait", "run", "crash"]), min_size=len(sends), max_size=len(sends)
        )
    )
    return Scenario(
        how=draw(st.sampled_from(["inner", "left"])),
        grace_ms=draw(grace_ms),
        before_ms=draw(_millis(20_000)),
        after_ms=draw(_millis(20_000)),
        orders=orders,
        payments=payments,
        sends=sends,
        actions=actions,
        batch_size=draw(st.integers(1, 4)),
    )


def expected(s: Scenario, late: set[str] = frozenset()) -> list[tuple[str, str | None]]:
    """The join of the records whose ids are not in `late`, sorted."""
    out: list[tuple[str, str | None]] = []
    for i, (key, left) in enumerate(s.orders):
        if f"o{i}" in late:
            continue
        matched = [
            (f"o{i}", f"p{j}")
            for j, (other, right) in enumerate(s.payments)
            if f"p{j}" not in late
            and other == key
            and left - s.before_ms <= right <= left + s.after_ms
        ]
        out += matched or ([(f"o{i}", None)] if s.how == "left" else [])
    return sorted(out, key=repr)


def play(s: Scenario) -> TestDriver:
    """Send the scenario's records in its order, running and crashing as it says; then let
    every interval close."""
    job = orders_with_payments(
        s.how, before=s.before_ms / 1000, after=s.after_ms / 1000, grace=s.grace_ms / 1000
    )
    driver = TestDriver(job, partitions=2, now=T0)
    for (topic, i), action in zip(s.sends, s.actions, strict=True):
        if topic == "orders":
            key, millis = s.orders[i]
            driver.send(topic, order(f"o{i}", millis / 1000, account=key))
        else:
            key, millis = s.payments[i]
            driver.send(topic, payment(f"p{i}", millis / 1000, account=key))
        if action == "run":
            driver.run(batch_size=s.batch_size)
        elif action == "crash":
            driver.run(batch_size=s.batch_size, commit=False)
            driver.crash()
    driver.run(batch_size=s.batch_size)
    driver.advance(timedelta(days=1))
    return driver


@settings(max_examples=150, deadline=None)
@given(scenarios(grace_ms=st.just(SPREAD_MS)))
def test_any_interleaving_and_crash_point_commit_the_join_of_the_whole_input(
    s: Scenario,
) -> None:
    driver = play(s)

    assert sorted(driver.results("matched"), key=repr) == expected(s)
    assert driver.late == []
    assert driver.state("paid", 0) == driver.state("paid", 1) == {}


@settings(max_examples=150, deadline=None)
@given(scenarios(grace_ms=_millis(5_000)))
def test_with_late_records_the_output_is_the_join_of_the_records_on_time(s: Scenario) -> None:
    driver = play(s)

    late = [record.item.value.id for record in driver.late]
    assert len(set(late)) == len(late)
    assert sorted(driver.results("matched"), key=repr) == expected(s, set(late))
    assert driver.state("paid", 0) == driver.state("paid", 1) == {}
