"""The payments job's tables read alike in memory, on SQLite and on real PostgreSQL: rows
written through the job's declared sinks (committed as a batch), read through the
`PaymentQueries` port: the flagged feed's filters and keyset pages, per-rule counts, a
transaction's outcomes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.adapters.memory.payment_queries import InMemoryPaymentQueries
from pipeline.adapters.memory.table_sinks import DeclaredRows
from pipeline.adapters.sql.payment_queries import SqlPaymentQueries
from pipeline.adapters.sql.payment_sinks import PAYMENT_SINKS
from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import CheckpointStore
from pipeline.application.ports.payments import FlaggedFilter, FlaggedPosition, PaymentQueries
from pipeline.domain.fraud import (
    NO_OUTCOME,
    FlaggedTransaction,
    FraudRule,
    TransactionOutcome,
    flag_reasons,
)
from pipeline.domain.payments import Channel
from tests.databases import module_database
from tests.declared_stores import emptied, memory_store, sql_store, sqlite_url
from tests.sink_batches import SinkBatches

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
P0 = TopicPartition("transactions", 0)


def flagged(
    n: int, *reasons: FraudRule, account: str = "acct-1", at: int | None = None
) -> FlaggedTransaction:
    return FlaggedTransaction(
        transaction_id=f"tx-{n:03d}",
        account_id=account,
        amount=Decimal("12.3400"),
        currency="EUR",
        merchant="grocery-de-001",
        country="DE",
        channel=Channel.ONLINE,
        timestamp=T0 + timedelta(minutes=n if at is None else at),
        reasons=reasons,
        score=0.5,
    )


def outcome(tx: str, kind: str, minutes: float | None) -> TransactionOutcome:
    return TransactionOutcome(
        transaction_id=tx,
        account_id="acct-1",
        amount=Decimal("12.3400"),
        currency="EUR",
        transaction_time=T0,
        outcome=kind,
        outcome_time=None if minutes is None else T0 + timedelta(minutes=minutes),
        reason=None if kind in ("authorised", NO_OUTCOME) else "fraud",
    )


class World:
    def __init__(self, store: CheckpointStore, queries: PaymentQueries) -> None:
        self.batches = SinkBatches(store, P0, group_id="payments-contract")
        self.queries = queries

    async def store_flags(self, *rows: FlaggedTransaction) -> None:
        reasons = [r for f in rows for r in flag_reasons(f)]
        await self.batches.commit(
            {"flagged_transactions": list(rows), "fraud_flag_reasons": reasons}
        )

    async def store_outcomes(self, *rows: TransactionOutcome) -> None:
        await self.batches.commit({"transaction_outcomes": list(rows)})


def ids(found: list[FlaggedTransaction]) -> list[str]:
    return [f.transaction_id for f in found]


class PaymentQueriesContract:
    @pytest.fixture
    def world(self) -> World:
        raise NotImplementedError

    async def test_flagged_transactions_come_back_newest_first_as_stored(
        self, world: World
    ) -> None:
        rows = [flagged(1, FraudRule.VELOCITY), flagged(2, FraudRule.CARD_TESTING)]
        await world.store_flags(*rows)

        found = await world.queries.find_flagged(FlaggedFilter())

        assert found == [rows[1], rows[0]]

    async def test_the_feed_filters_by_rule_account_and_time(self, world: World) -> None:
        await world.store_flags(
            flagged(1, FraudRule.VELOCITY),
            flagged(2, FraudRule.AMOUNT_SPIKE, FraudRule.VELOCITY, account="acct-2"),
            flagged(3, FraudRule.AMOUNT_SPIKE),
            flagged(4, FraudRule.IMPOSSIBLE_TRAVEL),
        )
        q = world.queries

        by_rule = await q.find_flagged(FlaggedFilter(rule=FraudRule.VELOCITY))
        by_account = await q.find_flagged(FlaggedFilter(account_id="acct-2"))
        by_time = await q.find_flagged(
            FlaggedFilter(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
        )

        assert ids(by_rule) == ["tx-002", "tx-001"]
        assert ids(by_account) == ["tx-002"]
        assert ids(by_time) == ["tx-003", "tx-002"]

    async def test_pages_follow_each_other_without_gaps_or_repeats_even_on_equal_times(
        self, world: World
    ) -> None:
        await world.store_flags(
            *(flagged(n, FraudRule.VELOCITY, at=n // 2) for n in range(7))  # pairs share times
        )
        seen: list[str] = []
        after: FlaggedPosition | None = None
        while True:
            page = await world.queries.find_flagged(FlaggedFilter(), after=after, limit=3)
            seen.extend(ids(page))
            if len(page) < 3:
                break
            after = FlaggedPosition(page[-1].timestamp, page[-1].transaction_id)

        assert seen == ["tx-006", "tx-004", "tx-005", "tx-002", "tx-003", "tx-000", "tx-001"]

    async def test_rule_counts_cover_every_rule_in_the_range(self, world: World) -> None:
        await world.store_flags(
            flagged(1, FraudRule.VELOCITY),
            flagged(2, FraudRule.VELOCITY, FraudRule.AMOUNT_SPIKE),
            flagged(10, FraudRule.CARD_TESTING),
        )

        counts = await world.queries.rule_counts(until=T0 + timedelta(minutes=5))

        assert counts == {
            FraudRule.VELOCITY: 2,
            FraudRule.CARD_TESTING: 0,
            FraudRule.IMPOSSIBLE_TRAVEL: 0,
            FraudRule.AMOUNT_SPIKE: 1,
            FraudRule.NIGHT_NEW_CATEGORY: 0,
        }

    async def test_a_transactions_outcomes_in_time_order_and_none_for_an_unknown_one(
        self, world: World
    ) -> None:
        chargeback, authorised = outcome("tx-1", "chargeback", 90), outcome("tx-1", "authorised", 1)
        await world.store_outcomes(chargeback, authorised, outcome("tx-2", NO_OUTCOME, None))

        assert await world.queries.outcomes_of("tx-1") == [authorised, chargeback]
        assert await world.queries.outcomes_of("tx-2") == [outcome("tx-2", NO_OUTCOME, None)]
        assert await world.queries.outcomes_of("tx-3") == []


class TestInMemoryPaymentQueries(PaymentQueriesContract):
    @pytest.fixture
    def world(self) -> World:
        rows: DeclaredRows = {}
        return World(memory_store(PAYMENT_SINKS, rows), InMemoryPaymentQueries(rows))


class SqlPaymentQueriesSuite(PaymentQueriesContract):
    @pytest.fixture
    async def world(self, sql_url: str) -> AsyncIterator[World]:
        async with emptied(sql_url, PAYMENT_SINKS) as engine:
            yield World(sql_store(engine, PAYMENT_SINKS), SqlPaymentQueries(engine))


class TestSqlitePaymentQueries(SqlPaymentQueriesSuite):
    @pytest.fixture
    def sql_url(self, tmp_path: Path) -> str:
        return sqlite_url(tmp_path)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    yield from module_database("contract_payments")


@pytest.mark.integration
class TestPostgresPaymentQueries(SqlPaymentQueriesSuite):
    @pytest.fixture
    def sql_url(self, postgres_url: str) -> str:
        return postgres_url
