"""`/api/v1/shop/…`: the shop job's funnel, revenue, sessions and top products."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from pipeline.domain.shop_analytics import FunnelCounts, SessionOutcome
from pipeline.entrypoints.api.params import earlier, parse_time, time_parameter
from pipeline.entrypoints.api.problems import problem_responses
from pipeline.entrypoints.api.shop_models import (
    FunnelOut,
    FunnelWindowOut,
    RevenueOut,
    SessionOut,
    ShopFunnel,
    ShopRevenue,
    ShopSessions,
    ShopTopProducts,
    TopProductOut,
)
from pipeline.entrypoints.bootstrap import Pipeline

MAX_RANGE = timedelta(days=7)
DEFAULT_RANGE = timedelta(hours=1)
From = Annotated[
    str | None, time_parameter("Range start, inclusive (default: to − 1 h).", name="from")
]
To = Annotated[str | None, time_parameter("Range end, exclusive (default: now).", name="to")]
Currency = Annotated[
    str | None,
    QueryParameter(description="Only this currency (ISO 4217, e.g. EUR).", pattern=r"^[A-Z]{3}$"),
]


def _range(pipeline: Pipeline, start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """[from, to) from the parameters: to defaults to now, from to an hour before it; at
    most 7 days (a longer range is cut at from + 7 days, and the answer's `to` says so)."""
    until = parse_time(end, "to") or pipeline.clock.now()
    since = parse_time(start, "from") or earlier(until, DEFAULT_RANGE)
    since = min(since, until)
    if until - since > MAX_RANGE:
        until = since + MAX_RANGE
    return since, until


async def shop_funnel(pipeline: Pipeline, since: datetime, until: datetime) -> ShopFunnel:
    """The body of the funnel of [since, until)."""
    points = await pipeline.shop.funnel(since, until) if since < until else []
    total = sum((p.counts for p in points), FunnelCounts())
    return ShopFunnel(
        start=since,
        end=until,
        total=FunnelOut.of(total),
        windows=[FunnelWindowOut.of_point(p) for p in points],
    )


async def shop_revenue(
    pipeline: Pipeline, since: datetime, until: datetime, currency: str | None
) -> ShopRevenue:
    """The body of the revenue of [since, until), of one currency or all."""
    points = await pipeline.shop.revenue(since, until, currency=currency) if since < until else []
    totals: dict[str, Decimal] = {}
    for point in points:
        totals[point.currency] = totals.get(point.currency, Decimal(0)) + point.revenue
    return ShopRevenue(
        start=since, end=until, totals=totals, minutes=[RevenueOut.of(p) for p in points]
    )


async def shop_top_products(pipeline: Pipeline, at: datetime, limit: int) -> ShopTopProducts:
    """The body of the top products of the latest window starting at or before `at`."""
    top = await pipeline.shop.top_products(at, limit=limit)
    if top is None:
        return ShopTopProducts(at=at, window_start=None, window_end=None, products=[])
    return ShopTopProducts(
        at=at,
        window_start=top.window_start,
        window_end=top.window_end,
        products=[TopProductOut.of(i, p) for i, p in enumerate(top.products, start=1)],
    )


def shop_controller(*, reads_need_key: bool) -> type[Controller]:
    """The shop controller; `reads_need_key` documents the 401 of its guarded reads."""
    errors = problem_responses(400, 503, *([401] if reads_need_key else []))

    class ShopController(Controller):
        """What the shop job derived from the e-commerce events."""

        path = "/api/v1/shop"
        tags = ["shop"]  # noqa: RUF012 - Litestar reads it as a class attribute

        @get("/funnel", summary="Funnel per five minutes", responses=errors)
        async def funnel(
            self, pipeline: NamedDependency[Pipeline], start: From = None, end: To = None
        ) -> ShopFunnel:
            """Searches, page views, cart additions and purchases of each closed five-minute
            window starting in [from, to), with the rates between the stages, oldest first,
            and the same summed over the range. At most 7 days at a time."""
            return await shop_funnel(pipeline, *_range(pipeline, start, end))

        @get("/revenue", summary="Revenue per minute and currency", responses=errors)
        async def revenue(
            self,
            pipeline: NamedDependency[Pipeline],
            start: From = None,
            end: To = None,
            currency: Currency = None,
        ) -> ShopRevenue:
            """Revenue of the orders in each closed minute starting in [from, to), per
            currency (a decimal string, exact), oldest first, and the total per currency.
            At most 7 days at a time."""
            return await shop_revenue(pipeline, *_range(pipeline, start, end), currency)

        @get("/sessions", summary="Closed shopping sessions", responses=errors)
        async def sessions(
            self,
            pipeline: NamedDependency[Pipeline],
            start: From = None,
            end: To = None,
            outcome: Annotated[
                SessionOutcome | None, QueryParameter(description="Only sessions that ended so.")
            ] = None,
            limit: Annotated[
                int, QueryParameter(ge=1, le=1000, description="At most this many (1–1000).")
            ] = 100,
        ) -> ShopSessions:
            """Sessions (a session id's events less than 30 minutes apart) that closed, with
            their last event in [from, to), latest ending first: events, duration, furthest
            funnel stage, outcome (bought, abandoned, browsed), orders and revenue."""
            since, until = _range(pipeline, start, end)
            found = (
                await pipeline.shop.sessions(since, until, outcome=outcome, limit=limit)
                if since < until
                else []
            )
            return ShopSessions(
                start=since,
                end=until,
                count=len(found),
                sessions=[SessionOut.of(s) for s in found],
            )

        @get("/top-products", summary="Best sellers of the last hour", responses=errors)
        async def top_products(
            self,
            pipeline: NamedDependency[Pipeline],
            at: Annotated[
                str | None,
                time_parameter("The latest window starting at or before this (default: now)."),
            ] = None,
            limit: Annotated[
                int, QueryParameter(ge=1, le=10, description="At most this many (1–10).")
            ] = 10,
        ) -> ShopTopProducts:
            """The products with the most revenue (in euros, at the shop's rates) in the
            latest closed hour-long window starting at or before `at` (a window starts every
            minute)."""
            moment = parse_time(at, "at") or pipeline.clock.now()
            return await shop_top_products(pipeline, moment, limit)

    return ShopController
