"""The shop job's tables in SQL: the column values of each of its rows (what its table sinks
write) and the queries the API asks (`ShopQueries`), adding the partitions' windows up in
the database (GROUP BY) on PostgreSQL and SQLite alike."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.sql import tables
from pipeline.adapters.sql.errors import store_errors
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


def session_columns(session: ShopSession) -> dict[str, object]:
    """A session as the columns of `shop_sessions`."""
    return {
        "session_id": session.session_id,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "user_id": session.user_id,
        "events": session.events,
        "stage": session.stage.label,
        "outcome": session.outcome.value,
        "orders": session.orders,
        "revenue": session.revenue,
        "currency": session.currency,
    }


def funnel_columns(row: FunnelWindow) -> dict[str, object]:
    """A partition's funnel window as the columns of `shop_funnel_5m`."""
    counts = row.counts
    return {
        "window_start": row.window_start,
        "partition": row.partition,
        "window_end": row.window_end,
        "searches": counts.searches,
        "views": counts.views,
        "carts": counts.carts,
        "purchases": counts.purchases,
    }


def revenue_columns(row: CurrencyRevenue) -> dict[str, object]:
    """A partition's revenue in a currency and minute as the columns of `shop_revenue_1m`."""
    return {
        "minute": row.minute,
        "currency": row.currency,
        "partition": row.partition,
        "revenue": row.revenue,
        "orders": row.orders,
    }


def product_rank_columns(row: ProductRank) -> dict[str, object]:
    """A place in a partition's top products as the columns of `shop_top_products_1h`."""
    return {
        "window_start": row.window_start,
        "partition": row.partition,
        "rank": row.rank,
        "window_end": row.window_end,
        "product_id": row.product_id,
        "revenue_eur": row.sales.revenue_eur,
        "units": row.sales.units,
    }


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
