"""The shop job's queries (`ShopQueries`) over the rows its declared table sinks keep in
memory (`table_sinks.DeclaredRows`), adding the partitions' windows up like the SQL ones."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipeline.application.ports.shop import FunnelPoint, RevenuePoint, TopProduct, TopProducts
from pipeline.domain.shop_analytics import (
    FunnelCounts,
    ProductRank,
    SessionOutcome,
    ShopSession,
)

if TYPE_CHECKING:
    from pipeline.adapters.memory.table_sinks import DeclaredRows


class InMemoryShopQueries:
    """`ShopQueries` over the in-memory rows of the shop's declared table sinks."""

    def __init__(self, rows: DeclaredRows) -> None:
        self._rows = rows

    def _table(self, name: str) -> list[Any]:
        return list(self._rows.get(name, {}).values())

    async def funnel(self, since: datetime, until: datetime) -> list[FunnelPoint]:
        """The funnel of each window starting in [since, until), oldest first."""
        windows: dict[tuple[datetime, datetime], FunnelCounts] = {}
        for row in self._table("shop_funnel_5m"):
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
        for row in self._table("shop_revenue_1m"):
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
            for s in self._table("shop_sessions")
            if since <= s.ended_at < until and outcome in (None, s.outcome)
        ]
        found.sort(key=lambda s: (s.ended_at, s.session_id), reverse=True)
        return found[:limit]

    async def top_products(self, at: datetime, *, limit: int = 10) -> TopProducts | None:
        """The top products of the latest window starting at or before `at`."""
        ranks: list[ProductRank] = self._table("shop_top_products_1h")
        starts = [r.window_start for r in ranks if r.window_start <= at]
        if not starts:
            return None
        start = max(starts)
        rows = [r for r in ranks if r.window_start == start]
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
