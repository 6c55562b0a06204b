"""Stream–stream interval join: orders (left) and payments (right) of one account whose
payment time lies in [order − before, order + after]; here before 10 s, after 20 s, grace
5 s, out-of-orderness 0, so the watermark is what `watermark_to` sets through the idle
timeout."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pipeline.streams import to_millis
from pipeline.streams.testing import TestDriver
from tests.unit.streams.join_jobs import (
    IDLE,
    T0,
    at,
    order,
    orders_with_payments,
    paid_for,
    payment,
)

MS = timedelta(milliseconds=1)


def watermark_to(driver: TestDriver, moment: datetime) -> None:
    """Let both topics go idle so that the watermark becomes `moment`."""
    driver.advance(moment + IDLE - driver.now)
    assert driver.watermark() == moment


def test_a_payment_within_the_interval_after_its_order_joins() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("orders", order("o1", 0))
    driver.run()
    driver.send("payments", payment("p1", 20))
    driver.run()

    assert driver.results("matched") == [("o1", "p1")]


def test_an_order_arriving_after_its_payment_joins() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("payments", payment("p1", -10))
    driver.run()
    driver.send("orders", order("o1", 0))
    driver.run()

    assert driver.results("matched") == [("o1", "p1")]


def test_records_just_outside_the_interval_do_not_join() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("payments", payment("early", -10.001))
    driver.send("payments", payment("after", 20.001))
    driver.send("orders", order("o1", 0))
    driver.run()

    assert driver.results("matched") == []


def test_records_of_different_keys_do_not_join() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("orders", order("o1", 0, account="a"), partition=0)
    driver.send("payments", payment("p1", 0, account="b"), partition=0)
    driver.run()

    assert driver.results("matched") == []


def test_every_pair_in_the_interval_joins() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("orders", order("o1", 0))
    driver.send("orders", order("o2", 5))
    driver.run()
    driver.send("payments", payment("p1", 1))
    driver.send("payments", payment("p2", 24))
    driver.run()

    assert sorted(driver.results("matched")) == [("o1", "p1"), ("o2", "p1"), ("o2", "p2")]


def test_the_joined_record_is_timed_at_the_later_of_the_two() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("payments", payment("p1", -5))
    driver.run()
    driver.send("orders", order("o1", 0))
    out = driver.run()

    assert [item.time for item in out.sinks["matched"]] == [to_millis(at(0))]


def test_a_left_record_is_on_time_until_the_watermark_passes_time_after_and_grace() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("payments", payment("p1", 20))
    driver.run()
    watermark_to(driver, at(25))

    driver.send("orders", order("o1", 0))
    driver.run()

    assert driver.results("matched") == [("o1", "p1")]
    assert driver.late == []


def test_a_left_record_after_its_interval_closed_goes_to_the_late_output() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("payments", payment("p1", 20))
    driver.run()
    watermark_to(driver, at(25) + MS)

    driver.send("orders", order("o1", 0))
    driver.run()

    assert driver.results("matched") == []
    assert [(late.step, late.item.value) for late in driver.late] == [("paid", order("o1", 0))]


@pytest.mark.parametrize(("watermark", "late"), [(at(15), []), (at(15) + MS, ["p1"])])
def test_a_right_record_of_an_inner_join_is_late_once_the_watermark_passes_before_and_grace(
    watermark: datetime, late: list[str]
) -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    watermark_to(driver, watermark)

    driver.send("payments", payment("p1", 0))
    driver.run()

    assert [record.item.value.id for record in driver.late] == late


def test_late_records_go_to_the_routed_late_output_when_there_is_one() -> None:
    driver = TestDriver(orders_with_payments(route_late=True), now=T0)
    watermark_to(driver, at(60))
    driver.send("orders", order("o1", 0))
    driver.send("payments", payment("p1", 0))
    driver.run()

    assert sorted(driver.results("late")) == ["o1", "p1"]
    assert driver.late == []


def test_left_join_emits_an_unmatched_order_once_when_its_interval_closes() -> None:
    driver = TestDriver(orders_with_payments("left"), now=T0)
    driver.send("orders", order("o1", 0))
    driver.run()
    watermark_to(driver, at(25))
    assert driver.results("matched") == []

    watermark_to(driver, at(25) + MS)
    watermark_to(driver, at(100))

    assert driver.results("matched") == [("o1", None)]


def test_left_join_never_emits_a_matched_order_alone() -> None:
    driver = TestDriver(orders_with_payments("left"), now=T0)
    driver.send("orders", order("o1", 0))
    driver.run()
    driver.send("payments", payment("p1", 20))
    driver.run()

    watermark_to(driver, at(100))

    assert driver.results("matched") == [("o1", "p1")]


def test_left_join_matches_a_payment_read_in_the_batch_that_closes_the_order() -> None:
    driver = TestDriver(orders_with_payments("left"), now=T0)
    driver.send("orders", order("o1", 0))
    driver.run()
    driver.send("payments", payment("p1", 20))
    driver.send("payments", payment("p2", 100, account="b"), partition=0)
    driver.send("orders", order("o2", 100, account="b"), partition=0)
    driver.run()

    assert driver.results("matched") == [("o1", "p1"), ("o2", "p2")]


def test_left_join_takes_a_payment_more_than_grace_behind_the_watermark_as_late() -> None:
    driver = TestDriver(orders_with_payments("left"), now=T0)
    driver.send("orders", order("o1", 10))
    driver.run()
    watermark_to(driver, at(15) + MS)

    driver.send("payments", payment("p1", 10))
    driver.run()

    assert [late.item.value.id for late in driver.late] == ["p1"]
    watermark_to(driver, at(100))
    assert driver.results("matched") == [("o1", None)]


def test_inner_join_still_takes_that_payment_while_its_own_interval_is_open() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("orders", order("o1", 10))
    driver.run()
    watermark_to(driver, at(15) + MS)

    driver.send("payments", payment("p1", 10))
    driver.run()

    assert driver.results("matched") == [("o1", "p1")]


def test_a_payment_after_its_order_was_reported_unmatched_is_late_not_joined() -> None:
    driver = TestDriver(orders_with_payments("left"), now=T0)
    driver.send("orders", order("o1", 0))
    driver.run()
    watermark_to(driver, at(25) + MS)

    driver.send("payments", payment("p1", 20))
    driver.run()

    assert driver.results("matched") == [("o1", None)]
    assert [late.item.value.id for late in driver.late] == ["p1"]


def test_inner_join_state_is_evicted_once_the_watermark_passes_time_span_and_grace() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("orders", order("o1", 0))
    driver.send("payments", payment("p1", 50))
    driver.run()

    watermark_to(driver, at(35))
    assert len(driver.state("paid")) == 2
    watermark_to(driver, at(35) + MS)
    assert [key[2] for key in driver.state("paid")] == [to_millis(at(50))]
    watermark_to(driver, at(85) + MS)
    assert driver.state("paid") == {}
    assert driver.task.state_size() == 0


def test_left_join_drops_an_order_from_state_when_its_interval_closes() -> None:
    driver = TestDriver(orders_with_payments("left"), now=T0)
    driver.send("orders", order("o1", 0))
    driver.run()

    watermark_to(driver, at(25) + MS)

    assert driver.state("paid") == {}


def test_a_match_is_remembered_across_a_crash() -> None:
    driver = TestDriver(orders_with_payments("left"), now=T0)
    driver.send("orders", order("o1", 0))
    driver.run()
    driver.send("payments", payment("p1", 5))
    driver.run()

    driver.crash()
    watermark_to(driver, at(100))

    assert driver.results("matched") == [("o1", "p1")]


def test_an_unmatched_order_is_emitted_once_across_a_crash_at_its_close() -> None:
    driver = TestDriver(orders_with_payments("left"), now=T0)
    driver.send("orders", order("o1", 0))
    driver.run()
    driver.advance(timedelta(minutes=5), commit=False)

    driver.crash()
    driver.advance(timedelta(minutes=5))

    assert driver.results("matched") == [("o1", None)]
    assert driver.state("paid") == {}


def test_the_buffered_records_are_restored_after_a_crash() -> None:
    driver = TestDriver(orders_with_payments(), partitions=2, now=T0)
    driver.send("orders", order("o1", 0, account="a"))
    driver.send("orders", order("o2", 0, account="b"))
    driver.run()

    driver.crash()
    driver.send("payments", payment("p1", 1, account="a"))
    driver.send("payments", payment("p2", 1, account="b"))
    driver.run()

    assert sorted(driver.results("matched")) == [("o1", "p1"), ("o2", "p2")]


def test_a_pair_the_predicate_rejects_is_not_joined() -> None:
    driver = TestDriver(orders_with_payments(matches=paid_for), now=T0)
    driver.send("orders", order("o1", 0))
    driver.send("orders", order("o2", 1))
    driver.run()
    driver.send("payments", payment("pay-o2", 5))
    driver.run()
    driver.send("orders", order("o3", 2))
    driver.send("payments", payment("pay-o3", 6))
    driver.run()

    assert driver.results("matched") == [("o2", "pay-o2"), ("o3", "pay-o3")]


def o2_paid_and_o1_met_only_o2s_payment() -> TestDriver:
    """A left join with `paid_for`: orders o1 and o2, then o2's payment, in o1's interval."""
    driver = TestDriver(orders_with_payments("left", matches=paid_for), now=T0)
    driver.send("orders", order("o1", 0))
    driver.send("orders", order("o2", 1))
    driver.run()
    driver.send("payments", payment("pay-o2", 5))
    driver.run()
    return driver


def test_left_join_emits_an_order_that_met_only_rejected_payments_once_at_its_close() -> None:
    driver = o2_paid_and_o1_met_only_o2s_payment()
    watermark_to(driver, at(25))
    assert driver.results("matched") == [("o2", "pay-o2")]

    watermark_to(driver, at(100))
    watermark_to(driver, at(200))

    assert driver.results("matched") == [("o2", "pay-o2"), ("o1", None)]


def test_left_join_emits_an_order_arriving_after_only_rejected_payments_alone() -> None:
    driver = TestDriver(orders_with_payments("left", matches=paid_for), now=T0)
    driver.send("payments", payment("pay-o2", -5))
    driver.run()
    driver.send("orders", order("o1", 0))
    driver.run()

    watermark_to(driver, at(100))

    assert driver.results("matched") == [("o1", None)]


def test_a_rejected_pair_leaves_the_order_unmatched_across_a_crash() -> None:
    driver = o2_paid_and_o1_met_only_o2s_payment()

    driver.crash()
    driver.advance(timedelta(minutes=5), commit=False)
    driver.crash()
    driver.advance(timedelta(minutes=5))

    assert sorted(driver.results("matched"), key=str) == [("o1", None), ("o2", "pay-o2")]
    assert driver.state("paid") == {}
