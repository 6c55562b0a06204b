"""Stream–global table join: every task holds the whole table, so a record is looked up by
any key, whatever partition it came from, as the table is when the record is processed; and
the global table's topic is no part of any co-partitioning check."""

from __future__ import annotations

import pytest

from pipeline.streams import Job, JobDefinitionError, Task, to_millis
from pipeline.streams.testing import TestDriver
from tests.unit.streams.join_jobs import (
    ENRICHED,
    T0,
    Account,
    Order,
    order,
    orders_with_global_accounts,
)


def test_a_record_of_any_partition_meets_its_row_by_the_lookup_key() -> None:
    driver = TestDriver(orders_with_global_accounts(), partitions=4, now=T0)
    driver.send("accounts", Account("a", "gold"), key="a")
    for n in range(8):  # keyed by order id: spread over the four partitions
        driver.send("orders", order(f"o{n}", account="a"))
    driver.run()

    assert sorted(driver.results("enriched")) == [(f"o{n}", "gold") for n in range(8)]


def test_an_updated_row_applies_to_the_records_processed_after_it() -> None:
    driver = TestDriver(orders_with_global_accounts(), now=T0)
    driver.send("accounts", Account("a", "gold"), key="a")
    driver.send("orders", order("o1"))
    driver.run()
    driver.send("accounts", Account("a", "silver"), key="a")
    driver.send("orders", order("o2"))
    driver.run()

    assert driver.results("enriched") == [("o1", "gold"), ("o2", "silver")]


def test_a_deleted_row_leaves_a_left_join_with_none_and_drops_from_an_inner_one() -> None:
    left = TestDriver(orders_with_global_accounts(how="left"), now=T0)
    inner = TestDriver(orders_with_global_accounts(), now=T0)
    for driver in (left, inner):
        driver.send("accounts", Account("a", "gold"), key="a")
        driver.run()
        driver.send("accounts", None, key="a")
        driver.send("orders", order("o1"))
        driver.run()

    assert left.results("enriched") == [("o1", None)]
    assert inner.results("enriched") == []


def test_a_global_table_is_never_checked_for_co_partitioning() -> None:
    plan = orders_with_global_accounts().plan()

    assert plan.copartitioned_topics() == ()
    plan.check_copartitioning({"orders": 6, "accounts": 1})  # does not raise


def test_a_job_whose_global_table_is_never_joined_is_refused() -> None:
    job = Job("unjoined")
    orders = job.source("orders", Order, key=lambda o: o.id, event_time=lambda o: o.at)
    orders.to(ENRICHED)
    job.global_table("accounts", Account)

    with pytest.raises(JobDefinitionError, match="global table 'accounts' is never joined"):
        job.plan()


def test_a_topic_read_as_a_source_and_as_a_global_table_is_refused() -> None:
    job = Job("twice")
    job.source("orders", Order, key=lambda o: o.id, event_time=lambda o: o.at)

    with pytest.raises(JobDefinitionError, match="reads topic 'orders' twice"):
        job.global_table("orders", Order)


def test_a_global_table_nobody_bound_fails_at_the_first_lookup_with_its_name() -> None:
    task = Task(orders_with_global_accounts().plan())
    now = to_millis(T0)
    task.assign(0, {}, now)

    with pytest.raises(RuntimeError, match="global table 'accounts' was never bound"):
        task.process([("orders", 0, order("o1"), None)], now)
