"""Response bodies of `/api/v1/shop/…` (msgspec structs, like the sensor endpoints'). Money
is a decimal string ("12.34"): exact, as stored."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from pipeline.application.ports import FunnelPoint, RevenuePoint, TopProduct
from pipeline.domain.shop_analytics import FunnelCounts, ShopSession


class FunnelOut(msgspec.Struct, kw_only=True):
    """Events per funnel stage and the rates between them (null without a denominator)."""

    searches: int
    views: int
    carts: int
    purchases: int
    cart_rate: float | None
    """Cart additions per page view."""
    purchase_rate: float | None
    """Purchases per cart addition."""
    conversion_rate: float | None
    """Purchases per page view."""

    @classmethod
    def of(cls, counts: FunnelCounts) -> FunnelOut:
        """The body of `counts`."""
        return cls(
            searches=counts.searches,
            views=counts.views,
            carts=counts.carts,
            purchases=counts.purchases,
            cart_rate=counts.cart_rate,
            purchase_rate=counts.purchase_rate,
            conversion_rate=counts.conversion_rate,
        )


class FunnelWindowOut(FunnelOut, kw_only=True):
    """The shop's funnel in one five-minute window."""

    window_start: datetime
    window_end: datetime

    @classmethod
    def of_point(cls, point: FunnelPoint) -> FunnelWindowOut:
        """The body of `point`."""
        return cls(
            window_start=point.window_start,
            window_end=point.window_end,
            **msgspec.structs.asdict(FunnelOut.of(point.counts)),
        )


class ShopFunnel(msgspec.Struct, kw_only=True):
    """The five-minute funnel windows starting in [from, to), oldest first, and their sum."""

    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    total: FunnelOut
    windows: list[FunnelWindowOut]


class RevenueOut(msgspec.Struct, kw_only=True):
    """Revenue of one currency in one minute."""

    minute: datetime
    currency: str
    revenue: Decimal
    orders: int

    @classmethod
    def of(cls, point: RevenuePoint) -> RevenueOut:
        """The body of `point`."""
        return cls(
            minute=point.minute,
            currency=point.currency,
            revenue=point.revenue,
            orders=point.orders,
        )


class ShopRevenue(msgspec.Struct, kw_only=True):
    """Revenue per minute and currency for minutes starting in [from, to), oldest first,
    and the total per currency."""

    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    totals: dict[str, Decimal]
    minutes: list[RevenueOut]


class SessionOut(msgspec.Struct, kw_only=True):
    """One closed shopping session."""

    session_id: str
    user_id: str
    started_at: datetime
    ended_at: datetime
    duration_s: float
    events: int
    stage: str
    """Furthest funnel stage: searched, viewed, carted or purchased."""
    outcome: str
    """bought, abandoned (a cart, no purchase) or browsed."""
    orders: int
    revenue: Decimal
    currency: str | None

    @classmethod
    def of(cls, session: ShopSession) -> SessionOut:
        """The body of `session`."""
        return cls(
            session_id=session.session_id,
            user_id=session.user_id,
            started_at=session.started_at,
            ended_at=session.ended_at,
            duration_s=session.duration.total_seconds(),
            events=session.events,
            stage=session.stage.label,
            outcome=session.outcome.value,
            orders=session.orders,
            revenue=session.revenue,
            currency=session.currency,
        )


class ShopSessions(msgspec.Struct, kw_only=True):
    """Closed sessions whose last event is in [from, to), latest ending first."""

    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    count: int
    sessions: list[SessionOut]


class TopProductOut(msgspec.Struct, kw_only=True):
    """One product's sales in the window, revenue in euros."""

    rank: int
    product_id: str
    revenue_eur: Decimal
    units: int

    @classmethod
    def of(cls, rank: int, product: TopProduct) -> TopProductOut:
        """The body of `product` at `rank`."""
        return cls(
            rank=rank,
            product_id=product.product_id,
            revenue_eur=product.revenue_eur,
            units=product.units,
        )


class ShopTopProducts(msgspec.Struct, kw_only=True):
    """The best sellers of the latest closed hour-long window starting at or before `at`
    (null window and no products before the first one closed)."""

    at: datetime
    window_start: datetime | None
    window_end: datetime | None
    products: list[TopProductOut]
