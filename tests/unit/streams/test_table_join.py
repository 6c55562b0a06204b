"""Stream–table join: each order is enriched with its account as the table is when the
order is processed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.streams import Task, Tombstone, to_millis
from pipeline.streams.testing import TestDriver
from tests.unit.streams.join_jobs import (
    T0,
    Account,
    at,
    order,
    orders_with_accounts,
)


def test_lookup_sees_the_latest_table_value_when_the_record_is_processed() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)
    driver.send("accounts", Account("a", "gold"))
    driver.run()
    driver.send("orders", order("o1"))
    driver.run()
    driver.send("accounts", Account("a", "silver"))
    driver.run()
    driver.send("orders", order("o2"))
    driver.run()

    assert driver.results("enriched") == [("o1", "gold"), ("o2", "silver")]


def test_a_table_update_read_between_two_records_of_one_batch_applies_between_them() -> None:
    task = Task(orders_with_accounts().plan())
    now = to_millis(T0)
    task.assign(0, {}, now)
    task.process([("accounts", 0, Account("a", "gold"), None)], now)

    out = task.process(
        [
            ("orders", 0, order("o1"), None),
            ("accounts", 0, Account("a", "silver"), None),
            ("orders", 0, order("o2"), None),
        ],
        now,
    )

    assert out.values("enriched") == [("o1", "gold"), ("o2", "silver")]


def test_a_tombstone_deletes_the_key_from_the_table() -> None:
    driver = TestDriver(orders_with_accounts(how="left"), now=T0)
    driver.send("accounts", Account("a", "gold"))
    driver.run()
    driver.send("accounts", None, key="a")
    driver.run()
    driver.send("orders", order("o1"))
    driver.run()

    assert driver.results("enriched") == [("o1", None)]
    assert driver.state("table:accounts") == {}


def test_left_join_emits_an_unmatched_record_with_none() -> None:
    driver = TestDriver(orders_with_accounts(how="left"), now=T0)
    driver.send("accounts", Account("b", "gold"))
    driver.send("orders", order("o1", account="a"))
    driver.run()

    assert driver.results("enriched") == [("o1", None)]


def test_inner_join_drops_a_record_whose_key_the_table_lacks() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)
    driver.send("accounts", Account("b", "gold"))
    driver.send("orders", order("o1", account="a"))
    driver.send("orders", order("o2", account="b"))
    driver.run()

    assert driver.results("enriched") == [("o2", "gold")]


def test_the_table_is_restored_after_a_crash() -> None:
    driver = TestDriver(orders_with_accounts(), partitions=2, now=T0)
    driver.send("accounts", Account("a", "gold"))
    driver.send("accounts", Account("b", "silver"))
    driver.run()
    driver.send("orders", order("o1", account="a"))
    driver.send("orders", order("o2", account="b"))
    driver.run(commit=False)

    driver.crash()
    driver.run()

    assert sorted(driver.results("enriched")) == [("o1", "gold"), ("o2", "silver")]


def test_an_uncommitted_table_update_is_read_again_after_a_crash() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)
    driver.send("accounts", Account("a", "gold"))
    driver.run(commit=False)

    driver.crash()
    driver.send("orders", order("o1"))
    driver.run()

    assert driver.results("enriched") == [("o1", "gold")]
    assert driver.state("table:accounts") == {"a": Account("a", "gold")}


def test_the_table_is_restored_when_its_partition_comes_back_in_a_rebalance() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)
    driver.send("accounts", Account("a", "gold"))
    driver.run()

    driver.rebalance(revoke=[0], assign=[0])
    driver.send("orders", order("o1"))
    driver.run()

    assert driver.results("enriched") == [("o1", "gold")]


def test_a_table_that_sends_nothing_does_not_hold_the_watermark_back() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)
    driver.send("orders", order("o1", seconds=10))
    driver.run()

    assert driver.watermark() == at(10)


def test_table_records_never_move_the_watermark() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)
    driver.send("orders", order("o1", seconds=10))
    driver.run()
    driver.send("accounts", Account("a", "gold"))
    driver.run()
    driver.advance(timedelta(seconds=1))

    assert driver.watermark() == at(10)


def test_a_table_record_whose_key_cannot_be_taken_is_rejected() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)
    driver.send("accounts", Account("a", "gold"), partition=0)
    driver.send("accounts", "not an account", partition=0)
    driver.run()

    assert [(r.step, r.rule) for r in driver.rejections] == [("table:accounts", "invalid_key")]
    assert driver.state("table:accounts") == {"a": Account("a", "gold")}


def test_the_driver_refuses_a_record_without_value_on_a_stream_topic() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)

    with pytest.raises(ValueError, match="only a table's topic"):
        driver.send("orders", None, key="a")


def test_the_driver_refuses_a_tombstone_without_key() -> None:
    driver = TestDriver(orders_with_accounts(), now=T0)

    with pytest.raises(ValueError, match="needs a key"):
        driver.send("accounts", None)


def test_a_tombstone_is_partitioned_by_its_key_like_the_value_it_deletes() -> None:
    driver = TestDriver(orders_with_accounts(), partitions=4, now=T0)
    keys = [f"k{n}" for n in range(8)]
    for key in keys:
        driver.send("accounts", Account(key, "gold"))
        driver.send("accounts", None, key=key)
    driver.run()

    assert all(driver.state("table:accounts", part) == {} for part in range(4))


def test_the_task_takes_a_tombstone_in_place_of_a_value() -> None:
    task = Task(orders_with_accounts(how="left").plan())
    now = to_millis(T0)
    task.assign(0, {}, now)
    task.process([("accounts", 0, Account("a", "gold"), None)], now)

    out = task.process(
        [("accounts", 0, Tombstone("a"), None), ("orders", 0, order("o1"), None)], now
    )

    assert out.values("enriched") == [("o1", None)]
