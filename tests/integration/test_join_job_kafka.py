"""A join job end to end on the real Kafka, through the worker's path (`run_job` under Kafka
authority): orders enriched from an accounts table materialized from a compacted topic
(updates and tombstones included, the table's state restored from its changelog by the next
run), and orders joined with payments within an interval of event time (a left join: an
order no payment matched leaves alone once its interval has closed, here when the quiet
partitions' watermarks follow the wall clock). Every expected output exactly once, nothing
else."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.adapters.clock import SystemClock
from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.kafka_authority import CHANGELOG_CONFIG, TopicSink
from pipeline.application.ports import TopicSpec
from pipeline.application.runtime.retry_policy import RetryPolicy
from pipeline.application.runtime.runner import JobRun, run_job
from pipeline.application.topic_names import dead_letter_topic, late_topic
from pipeline.streams import Job, Sink
from tests.integration.topics import read_committed
from tests.services import KAFKA, require_service
from tests.unit.streams.join_jobs import Account, JsonCodec, Order, Payment

pytestmark = pytest.mark.integration

PARTITIONS = 3
BEFORE, AFTER = timedelta(seconds=10), timedelta(seconds=20)
GRACE = timedelta(hours=1)
"""Longer than the span of the events: whichever topic the consumer reads ahead, no record
is late, and every interval closes only when the partitions go quiet."""
IDLE = timedelta(seconds=15)
"""Quiet this long, a partition's watermark follows the wall clock: the intervals close. Longer
than the worker takes from its restore to its first records on a loaded machine (its idle
timers start at the restore: sooner, the orders, hours old, would all be late)."""
IDLE_LOADING = timedelta(hours=1)


@dataclass
class Topics:
    bootstrap: str
    run: str

    def __post_init__(self) -> None:
        self.orders = f"join-orders-{self.run}"
        self.payments = f"join-payments-{self.run}"
        self.accounts = f"join-accounts-{self.run}"
        self.enriched = f"join-enriched-{self.run}"
        self.paid = f"join-paid-{self.run}"
        self.group = f"join-{self.run}"


@pytest.fixture
async def topics() -> AsyncIterator[Topics]:
    topics = Topics(require_service(KAFKA), uuid.uuid4().hex[:10])
    log = KafkaEventLog(topics.bootstrap)
    sources = [topics.orders, topics.payments, topics.accounts]
    await log.ensure_topics(
        [
            TopicSpec(name=topics.orders, partitions=PARTITIONS),
            TopicSpec(name=topics.payments, partitions=PARTITIONS),
            TopicSpec(name=topics.accounts, partitions=PARTITIONS, config=CHANGELOG_CONFIG),
            TopicSpec(name=topics.enriched, partitions=PARTITIONS),
            TopicSpec(name=topics.paid, partitions=PARTITIONS),
            *(TopicSpec(name=dead_letter_topic(t), partitions=PARTITIONS) for t in sources),
            *(TopicSpec(name=late_topic(t), partitions=PARTITIONS) for t in sources),
        ]
    )
    await log.close()
    yield topics
    admin = AdminClient({"bootstrap.servers": topics.bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if topics.run in t]
    for future in admin.delete_topics(names, operation_timeout=20).values():
        future.exception()


def join_job(topics: Topics, idle: timedelta) -> Job:
    """orders ⋈ accounts (left, table) → enriched; orders ⋈ payments (left, interval) →
    paid."""
    job = Job("orders-joined", idle_timeout=idle)
    orders = job.source(topics.orders, Order, key=lambda o: o.account, event_time=lambda o: o.at)
    payments = job.source(
        topics.payments, Payment, key=lambda p: p.account, event_time=lambda p: p.at
    )
    accounts = job.table(topics.accounts, Account, key=lambda a: a.account)
    orders.join_table(accounts, lambda o, a: (o.id, a.tier if a else None), how="left").to(
        Sink("enriched", tuple, topic=topics.enriched)
    )
    orders.join(
        payments,
        lambda o, p: (o.id, p.id if p else None),
        before=BEFORE,
        after=AFTER,
        grace=GRACE,
        how="left",
        step="paid",
    ).to(Sink("paid", tuple, topic=topics.paid))
    return job


async def as_json(row: tuple[str, str | None]) -> tuple[bytes | None, bytes | None]:
    return row[0].encode(), json.dumps(row).encode()


def job_run(topics: Topics, idle: timedelta) -> JobRun:
    log = KafkaEventLog(
        topics.bootstrap,
        consumer_config={"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
    )
    return JobRun(
        job=join_job(topics, idle),
        group_id=topics.group,
        log=log,
        store=None,  # type: ignore[arg-type]  # unused under Kafka authority
        codecs={
            topics.orders: JsonCodec(Order),
            topics.payments: JsonCodec(Payment),
            topics.accounts: JsonCodec(Account),
        },
        clock=SystemClock(),
        worker_id="join-test",
        batch_size=50,
        batch_timeout=0.2,
        retry=RetryPolicy(initial=0.1, maximum=1.0),
        retry_delays_s=(),
        topic_sinks={
            "enriched": TopicSink(topics.enriched, as_json),
            "paid": TopicSink(topics.paid, as_json),
        },
        member_id="worker-1",
    )


async def publish(topics: Topics, topic: str, rows: list[tuple[str, object | None]]) -> None:
    """(key, value or None for a tombstone) in order."""
    log = KafkaEventLog(topics.bootstrap)
    for key, value in rows:
        kind = type(value)
        payload = None if value is None else await JsonCodec(kind).encode(value)
        await log.publish(topic, key.encode(), payload)
    await log.close()


async def outputs(topics: Topics, topic: str) -> list[tuple[str, str | None]]:
    records = await asyncio.to_thread(read_committed, topics.bootstrap, topic)
    return [tuple(json.loads(r.value or b"")) for r in records]  # type: ignore[misc]


def events(base: datetime) -> tuple[list[Order], list[Payment]]:
    """Per account, an order every 45 s for ten minutes; a payment 5 s after most of them,
    one 15 s before some, one 40 s after (outside every interval) for others, none for the
    rest."""
    orders: list[Order] = []
    payments: list[Payment] = []
    for a, account in enumerate("abcdef"):
        for n in range(14):
            at = base + timedelta(seconds=45 * n + a)
            order = Order(f"o-{account}-{n}", account, at)
            orders.append(order)
            kind = (n + a) % 5
            if kind in (0, 1):
                payments.append(Payment(f"p-{account}-{n}", account, at + timedelta(seconds=5)))
            elif kind == 2:
                payments.append(Payment(f"p-{account}-{n}", account, at - timedelta(seconds=9)))
            elif kind == 3:
                payments.append(Payment(f"x-{account}-{n}", account, at + timedelta(seconds=40)))
    return orders, payments


def expected_paid(orders: list[Order], payments: list[Payment]) -> Counter[tuple[str, str | None]]:
    """The left interval join computed pairwise, over the whole input at once."""
    found: Counter[tuple[str, str | None]] = Counter()
    for o in orders:
        matches = [
            p.id
            for p in payments
            if p.account == o.account and o.at - BEFORE <= p.at <= o.at + AFTER
        ]
        found.update([(o.id, m) for m in matches] or [(o.id, None)])
    return found


async def test_a_table_join_and_an_interval_join_write_exactly_the_expected_outputs(
    topics: Topics,
) -> None:
    # The table first: an update, a tombstone; read by a first run, kept in its changelog.
    await publish(
        topics,
        topics.accounts,
        [
            ("a", Account("a", "gold")),
            ("b", Account("b", "silver")),
            ("c", Account("c", "bronze")),
            ("d", Account("d", "silver")),
            ("b", None),  # account b closed
            ("d", Account("d", "platinum")),
        ],
    )
    # Its quiet partitions keep their watermarks (the orders to come are hours old).
    await asyncio.wait_for(run_job(job_run(topics, IDLE_LOADING), until_caught_up=True), 120)
    base = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    orders, payments = events(base)
    await publish(topics, topics.orders, [(o.account, o) for o in orders])
    await publish(topics, topics.payments, [(p.account, p) for p in payments])
    want_paid = expected_paid(orders, payments)

    stop = asyncio.Event()
    running = asyncio.create_task(run_job(job_run(topics, IDLE), stop=stop))
    try:
        deadline = time.monotonic() + 120
        while len(await outputs(topics, topics.paid)) < sum(want_paid.values()):
            assert time.monotonic() < deadline, "the intervals never all closed"
            assert not running.done(), running
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # anything more would come now: nothing may
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)

    tiers = {"a": "gold", "c": "bronze", "d": "platinum"}
    assert Counter(await outputs(topics, topics.enriched)) == Counter(
        (o.id, tiers.get(o.account)) for o in orders
    )
    paid = Counter(await outputs(topics, topics.paid))
    assert paid == want_paid
    for source in (topics.orders, topics.payments):
        assert await outputs(topics, late_topic(source)) == [], "no record is late"
    assert sum(1 for _, p in paid if p is None) > 10, "some orders are left unmatched"
    assert sum(1 for _, p in paid if p is not None) > 30
