"""The shop job's tables in memory: its sinks for the in-memory checkpoint store, and the
queries the API asks (`ShopQueries`), adding the partitions' windows up like the SQL ones."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.adapters.memory.checkpoint import MemorySink, Undo
from pipeline.application.ports.checkpoint import SinkResult
from pipeline.application.ports.records import Record
from pipeline.application.ports.shop import FunnelPoint, RevenuePoint, TopProduct, TopProducts
from pipeline.domain.shop_analytics import (
    CurrencyRevenue,
    FunnelCounts,
    FunnelWindow,
    ProductRank,
    SessionOutcome,
    ShopSession,
)


@dataclass
class ShopTables:
    """The shop job's rows by natural key."""

    sessions: dict[tuple[str, datetime], ShopSession] = field(default_factory=dict)
    funnel: dict[tuple[datetime, int], FunnelWindow] = field(default_factory=dict)
    revenue: dict[tuple[datetime, str, int], CurrencyRevenue] = field(default_factory=dict)
    top_products: dict[tuple[datetime, int, int], ProductRank] = field(default_factory=dict)


class _ReplacingSink:
    """Stores each row under its natural key, replacing the row stored there."""

    def __init__(self, table: dict[Any, Any], key: Callable[[Any], Hashable]) -> None:
        self._table = table
        self._key = key

    def write(
        self, rows: Sequence[Any], origins: Sequence[Record | None], undo: Undo
    ) -> SinkResult:
        """Upsert the rows; `written` counts those that changed."""
        table, key_of = self._table, self._key
        before: list[tuple[Hashable, Any]] = []
        for row in rows:
            key = key_of(row)
            previous = table.get(key)
            if previous == row:
                continue
            before.append((key, previous))
            table[key] = row

        def take_back() -> None:
            for key, previous in reversed(before):
                if previous is None:
                    del table[key]
                else:
                    table[key] = previous

        undo.append(take_back)
        return SinkResult(written=len(before))


def memory_shop_sinks(tables: ShopTables) -> dict[str, MemorySink]:
    """The shop job's table sinks by name (its alerts go to the alerts sink), writing into
    `tables`."""
    return {
        "shop_sessions": _ReplacingSink(tables.sessions, lambda s: (s.session_id, s.started_at)),
        "shop_funnel_5m": _ReplacingSink(tables.funnel, lambda f: (f.window_start, f.partition)),
        "shop_revenue_1m": _ReplacingSink(
            tables.revenue, lambda r: (r.minute, r.currency, r.partition)
        ),
        "shop_top_products_1h": _ReplacingSink(
            tables.top_products, lambda p: (p.window_start, p.partition, p.rank)
        ),
    }


class InMemoryShopQueries:
    """`ShopQueries` over `ShopTables`."""

    def __init__(self, tables: ShopTables) -> None:
        self.tables = tables

    async def funnel(self, since: datetime, until: datetime) -> list[FunnelPoint]:
        """The funnel of each window starting in [since, until), oldest first."""
        windows: dict[tuple[datetime, datetime], FunnelCounts] = {}
        for row in self.tables.funnel.values():
            if since <= row.window_start < until:
                bounds = (row.window_start, row.window_end)
                windows[bounds] = windows.get(bounds, FunnelCounts()) + row.counts
        return [
            FunnelPoint(window_start=start, window_end=end, counts=counts)
            for (start, end), counts in sorted(windows.items())
        ]

    async def revenue(
        self, since: datetime, until: datetime, *, currency: str | None = None
    ) -> list[RevenuePoint]:
        """Revenue per minute starting in [since, until) and currency, oldest first."""
        sums: dict[tuple[datetime, str], tuple[Decimal, int]] = {}
        for row in self.tables.revenue.values():
            if since <= row.minute < until and currency in (None, row.currency):
                revenue, orders = sums.get((row.minute, row.currency), (Decimal(0), 0))
                sums[(row.minute, row.currency)] = (revenue + row.revenue, orders + row.orders)
        return [
            RevenuePoint(minute=minute, currency=code, revenue=revenue, orders=orders)
            for (minute, code), (revenue, orders) in sorted(sums.items())
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
        found = [
            s
            for s in self.tables.sessions.values()
            if since <= s.ended_at < until and outcome in (None, s.outcome)
        ]
        found.sort(key=lambda s: (s.ended_at, s.session_id), reverse=True)
        return found[:limit]

    async def top_products(self, at: datetime, *, limit: int = 10) -> TopProducts | None:
        """The top products of the latest window starting at or before `at`."""
        starts = [key[0] for key in self.tables.top_products if key[0] <= at]
        if not starts:
            return None
        start = max(starts)
        rows = [r for r in self.tables.top_products.values() if r.window_start == start]
        sales: dict[str, tuple[Decimal, int]] = {}
        for row in rows:
            revenue, units = sales.get(row.product_id, (Decimal(0), 0))
            sales[row.product_id] = (revenue + row.sales.revenue_eur, units + row.sales.units)
        ranked = sorted(sales.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
        return TopProducts(
            window_start=start,
            window_end=rows[0].window_end,
            products=tuple(
                TopProduct(product_id=p, revenue_eur=revenue, units=units)
                for p, (revenue, units) in ranked
            ),
        )
