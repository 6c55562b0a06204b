"""What the shop job derives from shop events: sessions, the funnel, revenue, top products,
and the rule that raises a conversion-drop alert.

The windowed results are computed per source partition (a shop event's partition is its
session's): a row of the funnel, of revenue or of a top-products ranking carries the
`partition` whose events it counts, and readers add the partitions' rows up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import IntEnum, StrEnum

from pipeline.domain.alerts import Alert, AlertDomain, AlertKind, Severity, alert_id_for
from pipeline.domain.errors import ShopEventInFuture, UnsupportedCurrency
from pipeline.domain.shop import ShopEvent, ShopEventType, validate_shop_event

CENT = Decimal("0.01")


DEFAULT_RATES: Mapping[str, Decimal] = {
    "EUR": Decimal(1),
    "USD": Decimal("1.08"),
    "GBP": Decimal("0.86"),
    "SEK": Decimal("11.4"),
    "PLN": Decimal("4.3"),
}
"""Units of each currency the shop sells in per euro: what ranks products sold in several
currencies against each other (top products are ranked by revenue in euros)."""


def check_shop_event(
    event: ShopEvent,
    *,
    now: datetime,
    max_clock_skew: timedelta,
    rates: Mapping[str, Decimal] = DEFAULT_RATES,
) -> None:
    """Raise the rule `event` breaks as the shop job sees it: the domain's shape rules, an
    event time too far ahead of `now` (it would move the windows' watermark past every
    genuine event), or a purchase in a currency without a rate."""
    validate_shop_event(event)
    if event.timestamp - now > max_clock_skew:
        raise ShopEventInFuture(
            f"event {event.event_id} at {event.timestamp.isoformat()} is more than "
            f"{max_clock_skew} ahead of {now.isoformat()}"
        )
    order = event.order
    if order is not None and order.currency not in rates:
        raise UnsupportedCurrency(
            f"order {order.order_id} is in {order.currency}; the shop sells in "
            f"{', '.join(sorted(rates))}"
        )


class FunnelStage(IntEnum):
    """How far down the funnel a shopper went (ordered)."""

    SEARCHED = 0
    VIEWED = 1
    CARTED = 2
    PURCHASED = 3

    @property
    def label(self) -> str:
        """The stage's name as stored and served (`searched`, …)."""
        return self.name.lower()


STAGE_OF: Mapping[ShopEventType, FunnelStage] = {
    ShopEventType.SEARCH: FunnelStage.SEARCHED,
    ShopEventType.PAGE_VIEW: FunnelStage.VIEWED,
    ShopEventType.ADD_TO_CART: FunnelStage.CARTED,
    ShopEventType.PURCHASE: FunnelStage.PURCHASED,
}


class SessionOutcome(StrEnum):
    """How a session ended."""

    BOUGHT = "bought"
    """At least one purchase."""
    ABANDONED = "abandoned"
    """Something went into the cart, nothing was bought."""
    BROWSED = "browsed"
    """Searches and views only."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShopSession:
    """One shopping session: the events of a session id less than the gap apart."""

    session_id: str
    user_id: str
    started_at: datetime
    ended_at: datetime
    """Time of the session's last event."""
    events: int
    stage: FunnelStage
    orders: int
    revenue: Decimal
    """Total of the session's orders (in `currency`; 0 without orders)."""
    currency: str | None

    @property
    def outcome(self) -> SessionOutcome:
        """Bought, abandoned (a cart, no purchase) or browsed."""
        if self.stage is FunnelStage.PURCHASED:
            return SessionOutcome.BOUGHT
        if self.stage is FunnelStage.CARTED:
            return SessionOutcome.ABANDONED
        return SessionOutcome.BROWSED

    @property
    def duration(self) -> timedelta:
        """From the first event to the last."""
        return self.ended_at - self.started_at


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True, kw_only=True)
class FunnelCounts:
    """Events per funnel stage: searches and page views → cart additions → purchases."""

    searches: int = 0
    views: int = 0
    carts: int = 0
    purchases: int = 0

    @property
    def cart_rate(self) -> float | None:
        """Cart additions per page view."""
        return _rate(self.carts, self.views)

    @property
    def purchase_rate(self) -> float | None:
        """Purchases per cart addition."""
        return _rate(self.purchases, self.carts)

    @property
    def conversion_rate(self) -> float | None:
        """Purchases per page view (None without views)."""
        return _rate(self.purchases, self.views)

    def __add__(self, other: FunnelCounts) -> FunnelCounts:
        return FunnelCounts(
            searches=self.searches + other.searches,
            views=self.views + other.views,
            carts=self.carts + other.carts,
            purchases=self.purchases + other.purchases,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FunnelWindow:
    """The funnel of one partition's events in one five-minute window."""

    window_start: datetime
    window_end: datetime
    partition: int
    counts: FunnelCounts


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrencyRevenue:
    """Revenue of one partition's orders in one currency in one minute."""

    minute: datetime
    currency: str
    partition: int
    revenue: Decimal
    orders: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductSales:
    """What one product sold: revenue in euros (at the shop's rates) and units."""

    revenue_eur: Decimal
    units: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductRank:
    """One product's place in one partition's top products of one hour-long window."""

    window_start: datetime
    window_end: datetime
    partition: int
    rank: int
    """1 for the best seller."""
    product_id: str
    sales: ProductSales


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversionRule:
    """When the conversion rate counts as far below its recent level: the window's rate is
    below `drop_ratio` × the rate of the `recent_windows` windows before it (pooled:
    purchases over views), with at least `min_views` views in the window and
    `min_recent_purchases` purchases in the recent ones (too few and a drop is noise)."""

    recent_windows: int = 12
    drop_ratio: float = 0.3
    min_views: int = 100
    min_recent_purchases: int = 20

    def __post_init__(self) -> None:
        if self.recent_windows < 1 or not 0 < self.drop_ratio < 1:
            raise ValueError("a conversion rule needs recent windows and a ratio in (0, 1)")
        if self.min_views < 1 or self.min_recent_purchases < 1:
            raise ValueError("a conversion rule needs positive minimum counts")


CONVERSION_SOURCE = "shop"
"""The `source` of conversion-drop alerts: the shop as a whole."""


def conversion_drop(
    window_start: datetime,
    window_end: datetime,
    current: FunnelCounts,
    recent: FunnelCounts,
    rule: ConversionRule,
) -> Alert | None:
    """The alert the window [`window_start`, `window_end`) raises when its conversion rate
    fell far below `recent` (the windows before it), else None. The id follows from the
    window, so every partition that sees the drop raises the same alert."""
    rate, level = current.conversion_rate, recent.conversion_rate
    if (
        rate is None
        or level is None
        or current.views < rule.min_views
        or recent.purchases < rule.min_recent_purchases
        or rate >= rule.drop_ratio * level
    ):
        return None
    kind = AlertKind.CONVERSION_DROP
    return Alert(
        alert_id=alert_id_for(CONVERSION_SOURCE, window_start, kind),
        source=CONVERSION_SOURCE,
        kind=kind,
        severity=Severity.CRITICAL if current.purchases == 0 else Severity.WARNING,
        message=(
            f"conversion rate {rate:.2%} from {window_start:%H:%M} to {window_end:%H:%M} UTC "
            f"is below {rule.drop_ratio:g} × its recent level {level:.2%} "
            f"({current.purchases} purchases of {current.views} views)"
        ),
        timestamp=window_start,
        domain=AlertDomain.SHOP,
        value=rate,
        threshold=level,
        score=1.0 - rate / level,
        reasons=(kind.value,),
    )
