"""The shop job's tables in SQL: their declared table sinks (what the job's rows fill, see
`table_sinks`) and the queries the API asks (`ShopQueries`), adding the partitions' windows
up in the database (GROUP BY) on PostgreSQL and SQLite alike."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.sql import tables
from pipeline.adapters.sql.errors import store_errors
from pipeline.adapters.sql.table_sinks import OnConflict, TableSink
from pipeline.application.ports.shop import FunnelPoint, RevenuePoint, TopProduct, TopProducts
from pipeline.domain.shop_analytics import (
    CurrencyRevenue,
    FunnelCounts,
    FunnelStage,
    FunnelWindow,
    ProductRank,
    SessionOutcome,
    ShopSession,
)

_Row = sa.Row[*tuple[Any, ...]]


def _session_values(session: ShopSession) -> tuple[object, ...]:
    return (
        session.session_id,
        session.started_at,
        session.ended_at,
        session.user_id,
        session.events,
        session.stage.label,
        session.outcome.value,
        session.orders,
        session.revenue,
        session.currency,
    )


def _funnel_values(row: FunnelWindow) -> tuple[object, ...]:
    counts = row.counts
    return (
        row.window_start,
        row.partition,
        row.window_end,
        counts.searches,
        counts.views,
        counts.carts,
        counts.purchases,
    )


def _revenue_values(row: CurrencyRevenue) -> tuple[object, ...]:
    return (row.minute, row.currency, row.partition, row.revenue, row.orders)


def _rank_values(row: ProductRank) -> tuple[object, ...]:
    sales = row.sales
    return (
        row.window_start,
        row.partition,
        row.rank,
        row.window_end,
        row.product_id,
        sales.revenue_eur,
        sales.units,
    )


# Window results are final (written once, when the window closes): a repeated write of a row
# (poison isolation, a replay) carries the same values, and REPLACE keeps the newest.
SHOP_SINKS: dict[str, TableSink[Any]] = {
    "shop_sessions": TableSink(
        tables.shop_sessions,
        columns=(
            "session_id",
            "started_at",
            "ended_at",
            "user_id",
            "events",
            "stage",
            "outcome",
            "orders",
            "revenue",
            "currency",
        ),
        values=_session_values,
        on_conflict=OnConflict.REPLACE,
    ),
    "shop_funnel_5m": TableSink(
        tables.shop_funnel_5m,
        columns=(
            "window_start",
            "partition",
            "window_end",
            "searches",
            "views",
            "carts",
            "purchases",
        ),
        values=_funnel_values,
        on_conflict=OnConflict.REPLACE,
    ),
    "shop_revenue_1m": TableSink(
        tables.shop_revenue_1m,
        columns=("minute", "currency", "partition", "revenue", "orders"),
        values=_revenue_values,
        on_conflict=OnConflict.REPLACE,
    ),
    "shop_top_products_1h": TableSink(
        tables.shop_top_products_1h,
        columns=(
            "window_start",
            "partition",
            "rank",
            "window_end",
            "product_id",
            "revenue_eur",
            "units",
        ),
        values=_rank_values,
        on_conflict=OnConflict.REPLACE,
    ),
}
"""The shop job's table sinks by sink name (registered in `declared.DECLARED_SINKS`)."""


def _money(value: Any) -> Decimal:
    # SQLite hands NUMERIC sums back as floats: two decimals is what was stored.
    return Decimal(value).quantize(Decimal("0.01")) if isinstance(value, float) else value


class SqlShopQueries:
    """`ShopQueries` on PostgreSQL or SQLite. Transient database failures surface as
    StoreUnavailable."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def funnel(self, since: datetime, until: datetime) -> list[FunnelPoint]:
        """The funnel of each window starting in [since, until), oldest first."""
        f = tables.shop_funnel_5m
        query = (
            sa.select(
                f.c.window_start,
                sa.func.max(f.c.window_end),
                sa.func.sum(f.c.searches),
                sa.func.sum(f.c.views),
                sa.func.sum(f.c.carts),
                sa.func.sum(f.c.purchases),
            )
            .where(f.c.window_start >= since, f.c.window_start < until)
            .group_by(f.c.window_start)
            .order_by(f.c.window_start)
        )
        rows = await self._fetch(query, "reading the shop funnel")
        return [
            FunnelPoint(
                window_start=start,
                window_end=end,
                counts=FunnelCounts(searches=int(s), views=int(v), carts=int(c), purchases=int(p)),
            )
            for start, end, s, v, c, p in rows
        ]

    async def revenue(
        self, since: datetime, until: datetime, *, currency: str | None = None
    ) -> list[RevenuePoint]:
        """Revenue per minute starting in [since, until) and currency, oldest first."""
        r = tables.shop_revenue_1m
        query = (
            sa.select(r.c.minute, r.c.currency, sa.func.sum(r.c.revenue), sa.func.sum(r.c.orders))
            .where(r.c.minute >= since, r.c.minute < until)
            .group_by(r.c.minute, r.c.currency)
            .order_by(r.c.minute, r.c.currency)
        )
        if currency is not None:
            query = query.where(r.c.currency == currency)
        rows = await self._fetch(query, "reading the shop revenue")
        return [
            RevenuePoint(minute=minute, currency=code, revenue=_money(total), orders=int(orders))
            for minute, code, total, orders in rows
        ]

    async def sessions(
        self,
        since: datetime,
        until: datetime,
        *,
        outcome: SessionOutcome | None = None,
        limit: int = 100,
    ) -> list[ShopSession]:
        """Closed sessions whose last event is in [since, until), latest ending first."""
        s = tables.shop_sessions
        query = (
            sa.select(s)
            .where(s.c.ended_at >= since, s.c.ended_at < until)
            .order_by(s.c.ended_at.desc(), s.c.session_id.desc())
            .limit(limit)
        )
        if outcome is not None:
            query = query.where(s.c.outcome == outcome.value)
        rows = await self._fetch(query, "reading shop sessions")
        return [_session(row) for row in rows]

    async def top_products(self, at: datetime, *, limit: int = 10) -> TopProducts | None:
        """The top products of the latest window starting at or before `at`."""
        t = tables.shop_top_products_1h
        latest = sa.select(sa.func.max(t.c.window_start)).where(t.c.window_start <= at)
        [(start,)] = await self._fetch(latest, "finding the latest top products")
        if start is None:
            return None
        revenue = sa.func.sum(t.c.revenue_eur)
        query = (
            sa.select(t.c.product_id, revenue, sa.func.sum(t.c.units), sa.func.max(t.c.window_end))
            .where(t.c.window_start == start)
            .group_by(t.c.product_id)
            .order_by(revenue.desc(), t.c.product_id)
            .limit(limit)
        )
        rows = await self._fetch(query, "reading the top products")
        return TopProducts(
            window_start=start,
            window_end=rows[0][3],
            products=tuple(
                TopProduct(product_id=p, revenue_eur=_money(total), units=int(units))
                for p, total, units, _ in rows
            ),
        )

    async def _fetch(self, query: sa.Select[*tuple[Any, ...]], action: str) -> list[_Row]:
        with store_errors(action):
            async with self._engine.connect() as conn:
                result = await conn.execute(query)
                return list(result.all())


def _session(row: _Row) -> ShopSession:
    return ShopSession(
        session_id=row.session_id,
        user_id=row.user_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        events=row.events,
        stage=FunnelStage[row.stage.upper()],
        orders=row.orders,
        revenue=_money(row.revenue),
        currency=row.currency,
    )
