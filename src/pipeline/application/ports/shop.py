"""The shop job's tables as the API reads them: the funnel, revenue, sessions and top
products. The job writes them through the checkpoint store; the windows are stored per
source partition and every query here adds the partitions up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from pipeline.domain.shop_analytics import FunnelCounts, SessionOutcome, ShopSession


@dataclass(frozen=True, slots=True, kw_only=True)
class FunnelPoint:
    """The shop's funnel in one five-minute window (every partition's events)."""

    window_start: datetime
    window_end: datetime
    counts: FunnelCounts


@dataclass(frozen=True, slots=True, kw_only=True)
class RevenuePoint:
    """The shop's revenue in one currency in one minute."""

    minute: datetime
    currency: str
    revenue: Decimal
    orders: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TopProduct:
    """A product's sales in an hour-long window, revenue in euros."""

    product_id: str
    revenue_eur: Decimal
    units: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TopProducts:
    """The best-selling products of one hour-long window, best first."""

    window_start: datetime
    window_end: datetime
    products: tuple[TopProduct, ...]


@runtime_checkable
class ShopQueries(Protocol):
    """What can be asked of the shop job's tables."""

    async def funnel(self, since: datetime, until: datetime) -> list[FunnelPoint]:
        """The funnel of each window starting in [since, until), oldest first."""
        ...

    async def revenue(
        self, since: datetime, until: datetime, *, currency: str | None = None
    ) -> list[RevenuePoint]:
        """Revenue per minute starting in [since, until) and currency, oldest first."""
        ...

    async def sessions(
        self,
        since: datetime,
        until: datetime,
        *,
        outcome: SessionOutcome | None = None,
        limit: int = 100,
    ) -> list[ShopSession]:
        """Closed sessions whose last event is in [since, until), latest ending first."""
        ...

    async def top_products(self, at: datetime, *, limit: int = 10) -> TopProducts | None:
        """The top products of the latest window starting at or before `at` (None if none)."""
        ...
