"""Declaring joins: what the builder refuses, and the co-partitioning the runtime checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.streams import Job, JobDefinitionError, Sink
from tests.unit.streams.join_jobs import (
    ENRICHED,
    MATCHED,
    Account,
    Order,
    Payment,
    orders_with_accounts,
    orders_with_payments,
)

SPAN = timedelta(seconds=10)


def _job() -> Job:
    return Job("joins")


def test_a_stream_rekeyed_with_key_by_cannot_join_a_table() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.id, event_time=lambda o: o.at)
    accounts = job.table("accounts", Account, key=lambda a: a.account)
    by_account = orders.key_by(lambda o: o.account, name="by-account")

    with pytest.raises(JobDefinitionError, match=r"join_table after 'key_by:by-account'"):
        by_account.join_table(accounts, lambda o, a: (o, a))


def test_even_a_copartitioned_key_by_cannot_join_a_table() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    accounts = job.table("accounts", Account, key=lambda a: a.account)
    lowered = orders.key_by(lambda o: o.account.lower(), copartitioned=True)

    with pytest.raises(JobDefinitionError, match="re-keyed stream"):
        lowered.join_table(accounts, lambda o, a: (o, a))


def test_a_stream_rekeyed_with_key_by_cannot_join_another_stream() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.id, event_time=lambda o: o.at)
    payments = job.source("payments", Payment, key=lambda p: p.account, event_time=lambda p: p.at)

    with pytest.raises(JobDefinitionError, match="join after 'key_by'"):
        orders.key_by(lambda o: o.account).join(
            payments, lambda o, p: (o, p), before=SPAN, after=SPAN, grace=SPAN, step="j"
        )


def test_a_rekeyed_stream_cannot_be_the_right_side_of_a_join_either() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    payments = job.source("payments", Payment, key=lambda p: p.id, event_time=lambda p: p.at)

    with pytest.raises(JobDefinitionError, match="key_by"):
        orders.join(
            payments.key_by(lambda p: p.account),
            lambda o, p: (o, p),
            before=SPAN,
            after=SPAN,
            grace=SPAN,
            step="j",
        )


def test_a_negative_interval_is_refused() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    payments = job.source("payments", Payment, key=lambda p: p.account, event_time=lambda p: p.at)

    with pytest.raises(JobDefinitionError, match=r"join step 'j': a duration cannot be negative"):
        orders.join(payments, lambda o, p: (o, p), before=-SPAN, after=SPAN, grace=SPAN, step="j")


def test_an_unknown_join_kind_is_refused() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    accounts = job.table("accounts", Account, key=lambda a: a.account)

    with pytest.raises(JobDefinitionError, match="how='outer'"):
        orders.join_table(accounts, lambda o, a: (o, a), how="outer")  # type: ignore[call-overload]


def test_a_table_of_another_job_is_refused() -> None:
    other = Job("other")
    accounts = other.table("accounts", Account, key=lambda a: a.account)
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)

    with pytest.raises(JobDefinitionError, match="of another job"):
        orders.join_table(accounts, lambda o, a: (o, a))


def test_a_topic_read_as_a_stream_and_as_a_table_is_refused() -> None:
    job = _job()
    job.source("accounts", Order, key=lambda o: o.account, event_time=lambda o: o.at)

    with pytest.raises(JobDefinitionError, match="reads topic 'accounts' twice"):
        job.table("accounts", Account, key=lambda a: a.account)


def test_a_table_never_joined_is_refused() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    orders.to(Sink("orders", Order))
    job.table("accounts", Account, key=lambda a: a.account)

    with pytest.raises(JobDefinitionError, match="table 'accounts' is never joined"):
        job.plan()


def test_a_join_whose_result_leads_nowhere_is_refused() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    payments = job.source("payments", Payment, key=lambda p: p.account, event_time=lambda p: p.at)
    orders.join(payments, lambda o, p: (o, p), before=SPAN, after=SPAN, grace=SPAN, step="j")

    with pytest.raises(JobDefinitionError, match="leads nowhere"):
        job.plan()


def test_the_join_state_is_named_by_its_step_and_the_table_by_its_topic() -> None:
    assert orders_with_payments().plan().stateful_steps == ("paid",)
    assert orders_with_accounts().plan().stateful_steps == ("table:accounts",)


def test_joined_topics_must_be_copartitioned() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    payments = job.source("payments", Payment, key=lambda p: p.account, event_time=lambda p: p.at)
    accounts = job.table("accounts", Account, key=lambda a: a.account)
    enriched = orders.join_table(accounts, lambda o, a: (o.id, a.tier))
    enriched.to(ENRICHED)
    orders.join(
        payments, lambda o, p: (o.id, p.id), before=SPAN, after=SPAN, grace=SPAN, step="j"
    ).to(MATCHED)
    job.source("audit", Order, key=lambda o: o.id, event_time=lambda o: o.at).to(
        Sink("audit", Order)
    )

    assert job.plan().copartitioned_topics() == (("accounts", "orders", "payments"),)


def test_separate_joins_make_separate_groups() -> None:
    job = _job()
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    refunds = job.source("refunds", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    accounts = job.table("accounts", Account, key=lambda a: a.account)
    tiers = job.table("tiers", Account, key=lambda a: a.account)
    orders.join_table(accounts, lambda o, a: (o.id, a.tier)).to(ENRICHED)
    refunds.join_table(tiers, lambda o, a: (o.id, a.tier)).to(MATCHED)

    assert job.plan().copartitioned_topics() == (("accounts", "orders"), ("refunds", "tiers"))


def test_the_copartitioning_check_names_the_topics_and_their_counts() -> None:
    plan = orders_with_accounts().plan()

    with pytest.raises(JobDefinitionError) as raised:
        plan.check_copartitioning({"orders": 6, "accounts": 3})

    assert "not co-partitioned (accounts has 3, orders has 6 partitions)" in str(raised.value)


def test_the_copartitioning_check_passes_equal_counts() -> None:
    orders_with_payments().plan().check_copartitioning({"orders": 6, "payments": 6})


def test_the_copartitioning_check_refuses_a_topic_it_has_no_count_for() -> None:
    plan = orders_with_payments().plan()

    with pytest.raises(JobDefinitionError, match="partition count of payments is unknown"):
        plan.check_copartitioning({"orders": 6})
