"""The shop job: e-commerce events → sessions, the funnel, revenue, top products and
conversion-drop alerts.

    ecommerce-events ─validate─┬─ session window (30 min gap), final ─────────→ shop_sessions
      (ShopEvent,   (rule →    ├─ key_by shop ─┬─ 5-min tumbling, final, gather → shop_funnel_5m
       by session)   DLQ)      │               └─ 65-min hopping / 5 min ───────→ alerts
                               ├─ purchases, key_by currency, 1-min tumbling ──→ shop_revenue_1m
                               └─ order lines, key_by product, 1-h hopping / 1 min, top 10
                                                                    → shop_top_products_1h

Scope. Events are keyed and partitioned by session id, so a session is exact: all its events
come from one partition. The funnel, revenue and product windows re-key explicitly
(`key_by(..., copartitioned=True)`): the engine has no repartition topic and keeps state per
source partition and key, so each of those windows aggregates **one partition's events** —
a partial result. `top_k` is the engine's step that hands a window's results of one
partition together with that partition's number (`Ranking`), so each row carries its
partition: the tables are keyed by window and partition, and the queries add the
partitions up (the top products: a product's revenue summed over the partitions' top
tens, exact for every product that made each partition's top ten).

Every window emits once, when it closes (`final`): a window's row is written once and a
repeated write (a replayed or isolated batch) replaces it with the same values. The alert
compares each five-minute window with the hour before it, per partition; its id follows
from the window, so the partitions that see the same drop raise one alert.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.domain import Alert, DomainError, ShopEvent, ShopEventType
from pipeline.domain.sensors import DEFAULT_MAX_CLOCK_SKEW
from pipeline.domain.shop_analytics import (
    CENT,
    DEFAULT_RATES,
    STAGE_OF,
    ConversionRule,
    CurrencyRevenue,
    FunnelCounts,
    FunnelStage,
    FunnelWindow,
    ProductRank,
    ProductSales,
    ShopSession,
    check_shop_event,
    conversion_drop,
)
from pipeline.streams import (
    Hopping,
    Job,
    Ranking,
    Session,
    Sink,
    Tumbling,
    Windowed,
    from_millis,
    to_millis,
)

SESSIONS = Sink("shop_sessions", ShopSession, "table shop_sessions: one row per closed session")
FUNNEL = Sink(
    "shop_funnel_5m", FunnelWindow, "table shop_funnel_5m: per five minutes and partition"
)
REVENUE = Sink(
    "shop_revenue_1m",
    CurrencyRevenue,
    "table shop_revenue_1m: per minute, currency and partition",
)
TOP_PRODUCTS = Sink(
    "shop_top_products_1h",
    ProductRank,
    "table shop_top_products_1h: per hour-long window (every minute), partition and rank",
)
ALERTS = Sink("alerts", Alert, "table alerts (outbox to system-alerts): conversion drops")

SESSION_GAP = timedelta(minutes=30)
FUNNEL_WINDOW = timedelta(minutes=5)
REVENUE_WINDOW = timedelta(minutes=1)
TOP_WINDOW = timedelta(hours=1)
TOP_ADVANCE = timedelta(minutes=1)
TOP_PRODUCTS_K = 10
SHOP_KEY = "shop"
"""The key of the shop-wide windows (funnel, conversion): one per partition."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShopJobConfig:
    """What the shop job is parameterised by (from settings)."""

    topic: str
    window_grace: timedelta = timedelta(seconds=60)
    """How long after its end (by the partition's watermark) a window still takes events."""
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    rates: Mapping[str, Decimal] = field(default_factory=lambda: DEFAULT_RATES)
    conversion: ConversionRule = field(default_factory=ConversionRule)
    idle_timeout: timedelta = timedelta(seconds=30)


def shop_job(config: ShopJobConfig) -> Job:
    """The shop job over `config.topic`, validating against the wall-clock time of each
    batch."""
    job = Job(
        "shop",
        idle_timeout=config.idle_timeout,
        # A reading the validation refuses as from the future must not close windows.
        max_ahead=config.max_clock_skew,
        description="shop events → sessions, funnel, revenue, top products, conversion alerts",
    )
    grace, skew, rates, rule = (
        config.window_grace,
        config.max_clock_skew,
        config.rates,
        config.conversion,
    )

    def check(event: ShopEvent, now: datetime) -> None:
        check_shop_event(event, now=now, max_clock_skew=skew, rates=rates)

    events = job.source(
        config.topic, ShopEvent, key=lambda e: e.session_id, event_time=lambda e: e.timestamp
    )
    valid = events.validate(check, rejects=(DomainError,), name="shop rules", wall_clock=True)

    (
        valid.window(Session(gap=SESSION_GAP, grace=grace), step="sessions")
        .aggregate(SessionFold())
        .final()
        .map(shop_session, name="session-rows")
        .to(SESSIONS)
    )

    # Shop-wide windows: one key, so one accumulator per partition (see the docstring).
    shop = valid.key_by(lambda e: SHOP_KEY, copartitioned=True, name="shop-wide")
    (
        shop.window(Tumbling(size=FUNNEL_WINDOW, grace=grace), step="funnel-5m")
        .aggregate(FunnelFold())
        .final()
        .top_k(1, by=lambda c: c.views, step="funnel-5m-gather")
        .flat_map(funnel_rows, name="funnel-rows")
        .to(FUNNEL)
    )
    history = FUNNEL_WINDOW * (rule.recent_windows + 1)
    (
        shop.filter(_counts_for_conversion, name="views-and-purchases")
        .window(Hopping(size=history, advance=FUNNEL_WINDOW, grace=grace), step="conversion")
        .aggregate(ConversionHistory(FUNNEL_WINDOW))
        .final()
        .flat_map(lambda result: conversion_alerts(result, rule), name="conversion-drop")
        .to(ALERTS)
    )

    purchases = valid.filter(lambda e: e.order is not None, name="purchases")
    (
        purchases.key_by(_currency, copartitioned=True, name="by-currency")
        .window(Tumbling(size=REVENUE_WINDOW, grace=grace), step="revenue-1m")
        .aggregate(RevenueFold())
        .final()
        .top_k(len(rates), by=lambda r: float(r[0]), step="revenue-1m-gather")
        .flat_map(revenue_rows, name="revenue-rows")
        .to(REVENUE)
    )
    (
        purchases.flat_map(lambda e: order_lines(e, rates), name="order-lines")
        .key_by(lambda line: line.product_id, copartitioned=True, name="by-product")
        .window(Hopping(size=TOP_WINDOW, advance=TOP_ADVANCE, grace=grace), step="products-1h")
        .aggregate(SalesFold())
        .final()
        .top_k(TOP_PRODUCTS_K, by=lambda s: float(s.revenue_eur), step="top-products-1h")
        .flat_map(product_ranks, name="product-ranks")
        .to(TOP_PRODUCTS)
    )
    return job


def _currency(event: ShopEvent) -> str:
    assert event.order is not None  # after the purchases filter
    return event.order.currency


def _counts_for_conversion(event: ShopEvent) -> bool:
    return event.event_type in (ShopEventType.PAGE_VIEW, ShopEventType.PURCHASE)


# ---------------------------------------------------------------------- sessions


class SessionFold:
    """A session's user, events, furthest stage, orders and their total (the mergeable
    accumulator of the session window: `[user, events, stage, orders, revenue,
    currency]`)."""

    def initial(self) -> list[Any]:
        return [None, 0, int(FunnelStage.SEARCHED), 0, Decimal(0), None]

    def add(self, acc: list[Any], event: ShopEvent) -> list[Any]:
        if acc[0] is None:
            acc[0] = event.user_id
        acc[1] += 1
        stage = int(STAGE_OF[event.event_type])
        acc[2] = max(acc[2], stage)
        order = event.order
        if order is not None:
            acc[3] += 1
            acc[4] += order.total
            acc[5] = acc[5] or order.currency
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        acc[0] = acc[0] or other[0]
        acc[1] += other[1]
        acc[2] = max(acc[2], other[2])
        acc[3] += other[3]
        acc[4] += other[4]
        acc[5] = acc[5] or other[5]
        return acc

    def result(self, acc: list[Any]) -> tuple[Any, ...]:
        return tuple(acc)


def shop_session(result: Windowed[str, tuple[Any, ...]]) -> ShopSession:
    """A closed session window as the domain's session."""
    user, events, stage, orders, revenue, currency = result.value
    return ShopSession(
        session_id=result.key,
        user_id=user,
        started_at=result.window.start_time,
        ended_at=from_millis(result.window.end - 1),
        events=events,
        stage=FunnelStage(stage),
        orders=orders,
        revenue=revenue.quantize(CENT),
        currency=currency,
    )


# ---------------------------------------------------------------------- funnel


_FUNNEL_SLOT = {
    ShopEventType.SEARCH: 0,
    ShopEventType.PAGE_VIEW: 1,
    ShopEventType.ADD_TO_CART: 2,
    ShopEventType.PURCHASE: 3,
}


class FunnelFold:
    """Events per funnel stage (`[searches, views, carts, purchases]`)."""

    def initial(self) -> list[int]:
        return [0, 0, 0, 0]

    def add(self, acc: list[int], event: ShopEvent) -> list[int]:
        acc[_FUNNEL_SLOT[event.event_type]] += 1
        return acc

    def merge(self, acc: list[int], other: list[int]) -> list[int]:
        return [a + b for a, b in zip(acc, other, strict=True)]

    def result(self, acc: list[int]) -> FunnelCounts:
        searches, views, carts, purchases = acc
        return FunnelCounts(searches=searches, views=views, carts=carts, purchases=purchases)


def funnel_rows(ranking: Ranking[str, FunnelCounts]) -> Iterator[FunnelWindow]:
    """The funnel row of one partition's window."""
    for _, counts in ranking.top:
        yield FunnelWindow(
            window_start=ranking.window.start_time,
            window_end=ranking.window.end_time,
            partition=ranking.partition,
            counts=counts,
        )


class ConversionHistory:
    """Page views and purchases per bucket of `bucket` (by event time) within a window:
    `{bucket start in epoch ms: [views, purchases]}`."""

    def __init__(self, bucket: timedelta) -> None:
        self._bucket = bucket // timedelta(milliseconds=1)

    def initial(self) -> dict[int, list[int]]:
        return {}

    def add(self, acc: dict[int, list[int]], event: ShopEvent) -> dict[int, list[int]]:
        millis = to_millis(event.timestamp)
        start = millis - millis % self._bucket
        counts = acc.get(start)
        if counts is None:
            counts = acc[start] = [0, 0]
        counts[event.event_type is ShopEventType.PURCHASE] += 1
        return acc

    def merge(self, acc: dict[int, list[int]], other: dict[int, list[int]]) -> dict[int, list[int]]:
        for start, (views, purchases) in other.items():
            counts = acc.setdefault(start, [0, 0])
            counts[0] += views
            counts[1] += purchases
        return acc

    def result(self, acc: dict[int, list[int]]) -> dict[int, tuple[int, int]]:
        return {start: (views, purchases) for start, (views, purchases) in acc.items()}


def conversion_alerts(
    result: Windowed[str, dict[int, tuple[int, int]]], rule: ConversionRule
) -> tuple[Alert, ...]:
    """The conversion-drop alert of a history window's last five minutes against the
    windows before it, if the rule fires."""
    current_start = result.window.end - FUNNEL_WINDOW // timedelta(milliseconds=1)
    current = FunnelCounts()
    recent = FunnelCounts()
    for start, (views, purchases) in result.value.items():
        counts = FunnelCounts(views=views, purchases=purchases)
        if start == current_start:
            current = counts
        else:
            recent += counts
    alert = conversion_drop(
        from_millis(current_start), result.window.end_time, current, recent, rule
    )
    return () if alert is None else (alert,)


# ---------------------------------------------------------------------- revenue


class RevenueFold:
    """Order totals and orders (`[total, orders]`), exact in Decimal."""

    def initial(self) -> list[Any]:
        return [Decimal(0), 0]

    def add(self, acc: list[Any], event: ShopEvent) -> list[Any]:
        assert event.order is not None
        acc[0] += event.order.total
        acc[1] += 1
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        return [acc[0] + other[0], acc[1] + other[1]]

    def result(self, acc: list[Any]) -> tuple[Decimal, int]:
        return acc[0], acc[1]


def revenue_rows(ranking: Ranking[str, tuple[Decimal, int]]) -> Iterator[CurrencyRevenue]:
    """One partition's revenue per currency in one minute."""
    for currency, (revenue, orders) in ranking.top:
        yield CurrencyRevenue(
            minute=ranking.window.start_time,
            currency=currency,
            partition=ranking.partition,
            revenue=revenue.quantize(CENT),
            orders=orders,
        )


# ---------------------------------------------------------------------- top products


@dataclass(frozen=True, slots=True)
class SoldLine:
    """One order line, valued in euros."""

    product_id: str
    revenue_eur: Decimal
    units: int


def order_lines(event: ShopEvent, rates: Mapping[str, Decimal]) -> tuple[SoldLine, ...]:
    """A purchase's lines valued in euros at the shop's rates (validation guarantees one)."""
    order = event.order
    assert order is not None
    rate = rates[order.currency]
    return tuple(
        SoldLine(line.product_id, line.unit_price * line.quantity / rate, line.quantity)
        for line in order.lines
    )


class SalesFold:
    """A product's revenue in euros and units (`[revenue, units]`)."""

    def initial(self) -> list[Any]:
        return [Decimal(0), 0]

    def add(self, acc: list[Any], line: SoldLine) -> list[Any]:
        acc[0] += line.revenue_eur
        acc[1] += line.units
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        return [acc[0] + other[0], acc[1] + other[1]]

    def result(self, acc: list[Any]) -> ProductSales:
        return ProductSales(revenue_eur=acc[0].quantize(CENT), units=acc[1])


def product_ranks(ranking: Ranking[str, ProductSales]) -> Iterator[ProductRank]:
    """One partition's top products of one hour-long window, best first."""
    for rank, (product_id, sales) in enumerate(ranking.top, start=1):
        yield ProductRank(
            window_start=ranking.window.start_time,
            window_end=ranking.window.end_time,
            partition=ranking.partition,
            rank=rank,
            product_id=product_id,
            sales=sales,
        )
