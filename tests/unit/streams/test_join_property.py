"""Interval joins give the same committed output whatever the interleaving of the two
topics, the batch boundaries and the crash points.

Assumptions: grace (60 s) is at least the spread of all event times (0–60 s), so no record
is ever late whichever topic runs ahead; out-of-orderness is 0 and the wall clock stands
still until the end, when it moves a day on so that every interval closes. The expected
output is computed from the whole input at once: every pair of one key within the
interval, and for a left join every order without one, each exactly once."""

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
    before_ms: int
    after_ms: int
    orders: list[Timed]
    payments: list[Timed]
    sends: list[tuple[str, int]]
    """(topic, index) in the order the records are appended to their topics"""
    actions: list[str]
    """after each send: "wait", "run" (committed) or "crash" (run uncommitted, crash)"""
    batch_size: int


TIMED = st.tuples(st.sampled_from("abc"), st.integers(0, SPREAD_MS - 1))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
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
        before_ms=draw(st.integers(0, 20_000)),
        after_ms=draw(st.integers(0, 20_000)),
        orders=orders,
        payments=payments,
        sends=sends,
        actions=actions,
        batch_size=draw(st.integers(1, 4)),
    )


def expected(s: Scenario) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for i, (key, left) in enumerate(s.orders):
        matched = [
            (f"o{i}", f"p{j}")
            for j, (other, right) in enumerate(s.payments)
            if other == key and left - s.before_ms <= right <= left + s.after_ms
        ]
        out += matched or ([(f"o{i}", None)] if s.how == "left" else [])
    return sorted(out, key=repr)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_any_interleaving_and_crash_point_commit_the_join_of_the_whole_input(
    s: Scenario,
) -> None:
    job = orders_with_payments(
        s.how, before=s.before_ms / 1000, after=s.after_ms / 1000, grace=SPREAD_MS / 1000
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

    assert sorted(driver.results("matched"), key=repr) == expected(s)
    assert driver.late == []
    assert driver.state("paid", 0) == driver.state("paid", 1) == {}
