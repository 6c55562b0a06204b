"""Idle sources in a job that reads two topics: a topic idles only when it sends nothing."""

from __future__ import annotations

from datetime import timedelta

from pipeline.streams.testing import TestDriver
from tests.unit.streams.join_jobs import T0, order, orders_with_payments, payment


def test_a_batch_read_after_a_pause_in_polling_does_not_count_its_topics_as_idle() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("orders", order("o0", 0, account="z"))
    driver.send("payments", payment("p0", 0, account="z"))
    driver.run()
    # the worker did not poll for a minute (a slow sink, an outage): records waited
    driver.set_time(T0 + timedelta(minutes=1))
    driver.send("orders", order("o1", 1))
    driver.send("payments", payment("p1", 2))

    driver.run()

    assert driver.late == []
    assert driver.results("matched") == [("o0", "p0"), ("o1", "p1")]
    assert driver.watermark() == T0 + timedelta(seconds=1)


def test_a_topic_that_sends_nothing_past_the_idle_timeout_lets_the_watermark_move_on() -> None:
    driver = TestDriver(orders_with_payments(), now=T0)
    driver.send("orders", order("o0", 0))
    driver.send("payments", payment("p0", 0))
    driver.run()
    driver.set_time(T0 + timedelta(minutes=1))
    driver.send("orders", order("o1", 50))

    driver.run()

    assert driver.watermark() == T0 + timedelta(seconds=30)
