"""The payments job's tables read on PostgreSQL or SQLite. The feed pages by
ix_flagged_transactions_time (or account and time), the rule filter and the per-rule counts
read fraud_flag_reasons by rule and time, outcomes by their primary key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.sql import tables
from pipeline.adapters.sql.errors import store_errors
from pipeline.application.ports.payments import FlaggedFilter, FlaggedPosition
from pipeline.domain.fraud import FlaggedTransaction, FraudRule, TransactionOutcome
from pipeline.domain.payments import Channel

_Row = sa.Row[*tuple[Any, ...]]


class SqlPaymentQueries:
    """`PaymentQueries` on the database the payments job writes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _fetch(self, query: sa.Select[*tuple[Any, ...]], action: str) -> list[_Row]:
        with store_errors(action):
            async with self._engine.connect() as conn:
                return list((await conn.execute(query)).all())

    async def find_flagged(
        self, query: FlaggedFilter, *, after: FlaggedPosition | None = None, limit: int = 100
    ) -> list[FlaggedTransaction]:
        """Flagged transactions matching `query`, newest first, starting after `after`."""
        f, r = tables.flagged_transactions, tables.fraud_flag_reasons
        conditions = _time_range(f.c.time, query.since, query.until)
        if query.account_id is not None:
            conditions.append(f.c.account_id == query.account_id)
        if query.rule is not None:
            conditions.append(
                sa.exists().where(
                    r.c.transaction_id == f.c.transaction_id, r.c.rule == query.rule.value
                )
            )
        if after is not None:
            conditions.append(
                sa.or_(
                    f.c.time < after.timestamp,
                    sa.and_(f.c.time == after.timestamp, f.c.transaction_id > after.transaction_id),
                )
            )
        select = (
            sa.select(f)
            .where(*conditions)
            .order_by(f.c.time.desc(), f.c.transaction_id)
            .limit(limit)
        )
        return [_flagged(row) for row in await self._fetch(select, "searching flagged payments")]

    async def rule_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[FraudRule, int]:
        """How many transactions each rule flagged in [since, until) (every rule, 0 too)."""
        r = tables.fraud_flag_reasons
        select = (
            sa.select(r.c.rule, sa.func.count())
            .where(*_time_range(r.c.time, since, until))
            .group_by(r.c.rule)
        )
        counts = dict.fromkeys(FraudRule, 0)
        for rule, count in await self._fetch(select, "counting flags per rule"):
            if rule in FraudRule.__members__.values():
                counts[FraudRule(rule)] = count
        return counts

    async def outcomes_of(self, transaction_id: str) -> list[TransactionOutcome]:
        """The transaction's stored outcomes, in outcome time order (none: empty)."""
        o = tables.transaction_outcomes
        select = (
            sa.select(o)
            .where(o.c.transaction_id == transaction_id)
            .order_by(o.c.outcome_time.asc().nulls_first(), o.c.outcome)
        )
        rows = await self._fetch(select, "reading a transaction's outcomes")
        return [
            TransactionOutcome(
                transaction_id=row.transaction_id,
                account_id=row.account_id,
                amount=row.amount,
                currency=row.currency,
                transaction_time=row.transaction_time,
                outcome=row.outcome,
                outcome_time=row.outcome_time,
                reason=row.reason,
            )
            for row in rows
        ]


def _time_range(
    column: sa.Column[Any], since: datetime | None, until: datetime | None
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def _flagged(row: _Row) -> FlaggedTransaction:
    return FlaggedTransaction(
        transaction_id=row.transaction_id,
        account_id=row.account_id,
        amount=row.amount,
        currency=row.currency,
        merchant=row.merchant,
        country=row.country,
        channel=Channel(row.channel),
        timestamp=row.time,
        reasons=tuple(FraudRule(r) for r in row.reasons),
        score=row.score,
    )
