"""A stream–table join job on the runtime: the table topic is consumed with the stream, a
null record is a tombstone, and topics a join reads together must be co-partitioned; a
global table is read whole before the job consumes, whatever its partition count."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import EventConsumer, TableCodec, TopicSpec
from pipeline.application.runtime.retry_policy import RetryPolicy
from pipeline.application.runtime.runner import JobRun, run_job
from tests.unit.runtime.jobs import ListSink
from tests.unit.streams.join_jobs import (
    T0,
    Account,
    JsonCodec,
    Order,
    at,
    orders_with_accounts,
    orders_with_global_accounts,
)


async def world(partitions: dict[str, int]) -> tuple[InMemoryEventLog, ListSink, JobRun]:
    log = InMemoryEventLog()
    await log.ensure_topics([TopicSpec(name=t, partitions=n) for t, n in partitions.items()])
    sink = ListSink(lambda row: row[0])
    run = JobRun(
        job=orders_with_accounts("left"),
        group_id="enrich",
        log=log,
        store=InMemoryCheckpointStore({"enriched": sink}),
        codecs={"orders": JsonCodec(Order), "accounts": JsonCodec(Account)},
        clock=ManualClock(T0),
        worker_id="test",
        batch_size=100,
        batch_timeout=0.02,
        retry=RetryPolicy(initial=0.001, maximum=0.002, attempts=2),
        retry_delays_s=(),
    )
    return log, sink, run


async def test_orders_are_enriched_from_the_table_and_a_tombstone_deletes_its_key() -> None:
    log, sink, run = await world({"orders": 2, "accounts": 2})
    accounts, orders = JsonCodec(Account), JsonCodec(Order)
    await log.publish("accounts", b"a", await accounts.encode(Account("a", "gold")))
    await log.publish("accounts", b"b", await accounts.encode(Account("b", "silver")))
    await log.publish("accounts", b"b", None)  # account b closed
    await log.flush()
    await asyncio.wait_for(run_job(run, until_caught_up=True), 5)
    await log.publish("orders", b"a", await orders.encode(Order("o1", "a", at(1))))
    await log.publish("orders", b"b", await orders.encode(Order("o2", "b", at(2))))
    await log.flush()

    await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    assert sink.rows == {"o1": ("o1", "gold"), "o2": ("o2", None)}


async def test_a_job_joining_topics_of_different_partition_counts_refuses_to_start() -> None:
    _, _, run = await world({"orders": 2, "accounts": 3})

    with pytest.raises(ConfigurationError, match="accounts"):
        await asyncio.wait_for(run_job(run, until_caught_up=True), 5)


async def global_enrich(
    log: InMemoryEventLog, tiers: Sequence[tuple[str, str]], closed: Sequence[str] = ()
) -> tuple[ListSink, JobRun]:
    """`log` holding accounts of `tiers` (those `closed` then deleted) in a topic of 3
    partitions and one order per account in one of 2, and a run of the job enriching the
    orders from the accounts as a global table, into the returned sink."""
    await log.ensure_topics(
        [TopicSpec(name="orders", partitions=2), TopicSpec(name="accounts", partitions=3)]
    )
    accounts, orders = JsonCodec(Account), JsonCodec(Order)
    for account, tier in tiers:
        await log.publish(
            "accounts", account.encode(), await accounts.encode(Account(account, tier))
        )
    for account in closed:
        await log.publish("accounts", account.encode(), None)
    for n, (account, _) in enumerate(tiers):
        await log.publish(
            "orders", f"o{n}".encode(), await orders.encode(Order(f"o{n}", account, at(n)))
        )
    await log.flush()
    sink = ListSink(lambda row: row[0])
    run = JobRun(
        job=orders_with_global_accounts(how="left"),
        group_id="global-enrich",
        log=log,
        store=InMemoryCheckpointStore({"enriched": sink}),
        codecs={"orders": JsonCodec(Order)},
        clock=ManualClock(T0),
        worker_id="test",
        batch_size=100,
        batch_timeout=0.02,
        retry=RetryPolicy(initial=0.001, maximum=0.002, attempts=2),
        retry_delays_s=(),
        table_codecs={"accounts": TableCodec(decode_key=bytes.decode, decode_value=account_row)},
    )
    return sink, run


async def test_a_global_table_of_another_partition_count_is_read_whole_by_the_worker() -> None:
    tiers = (("a", "gold"), ("b", "silver"), ("c", "bronze"))
    sink, run = await global_enrich(InMemoryEventLog(), tiers, closed=("c",))

    await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    assert sink.rows == {"o0": ("o0", "gold"), "o1": ("o1", "silver"), "o2": ("o2", None)}


def account_row(value: bytes) -> Account:
    data = json.loads(value)
    return Account(data["account"], data["tier"])


class AskedLog(InMemoryEventLog):
    """The in-memory log, noting how each group member was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[tuple[str, ...], bool]] = []
        self.interleaved: list[tuple[str, ...]] = []

    def consumer(self, **kwargs: Any) -> EventConsumer:
        self.asked.append((tuple(kwargs["topics"]), kwargs.get("co_partitioned", False)))
        if kwargs.get("interleaved", False):
            self.interleaved.append(tuple(kwargs["topics"]))
        return super().consumer(**kwargs)


async def test_a_job_joining_co_partitioned_topics_asks_its_group_for_co_partitioning() -> None:
    log = AskedLog()
    await log.ensure_topics([TopicSpec(name=t, partitions=2) for t in ("orders", "accounts")])
    run = dataclasses.replace((await world({"orders": 2, "accounts": 2}))[2], log=log)

    await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    assert (("orders", "accounts"), True) in log.asked
    # Under database authority it writes no topic: nothing asks to read interleaved.
    assert not log.interleaved
