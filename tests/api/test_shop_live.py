"""`/ws/shop`: a snapshot of the shop's tables and alerts, sent again when they change."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from litestar import Litestar

from pipeline.adapters.clock import ManualClock
from pipeline.domain.shop_analytics import (
    ConversionRule,
    CurrencyRevenue,
    FunnelCounts,
    FunnelWindow,
    conversion_drop,
)
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import ApiSettings
from tests.api.websockets import AsgiWebSocket, running
from tests.shop_events import commit_rows


async def write(pipeline: Pipeline, sink: str, *rows: object) -> None:
    await commit_rows(pipeline.checkpoint, {sink: rows})


async def test_the_shop_view_sends_the_tables_and_again_when_they_change(
    pipeline: Pipeline, clock: ManualClock
) -> None:
    start = clock.now() - timedelta(minutes=10)
    await write(
        pipeline,
        "shop_funnel_5m",
        FunnelWindow(
            window_start=start,
            window_end=start + timedelta(minutes=5),
            partition=0,
            counts=FunnelCounts(views=200, carts=20, purchases=10),
        ),
    )
    settings = ApiSettings(ws_shop_interval_s=0.05)
    async for app in running(create_app(pipeline, settings)):
        async with AsgiWebSocket(app, "/ws/shop") as ws:
            first = await ws.receive_json()
            await write(
                pipeline,
                "shop_revenue_1m",
                CurrencyRevenue(
                    minute=start, currency="EUR", partition=1, revenue=Decimal("9.50"), orders=1
                ),
            )
            second = await ws.receive_json()

    assert first["type"] == "shop"
    assert first["funnel"]["total"]["conversion_rate"] == 0.05
    assert first["revenue"]["minutes"] == []
    assert second["revenue"]["totals"] == {"EUR": "9.50"}
    assert second["funnel"] == first["funnel"]


async def test_shop_alerts_reach_the_shop_view_with_their_domain(
    pipeline: Pipeline, clock: ManualClock
) -> None:
    start = clock.now() - timedelta(minutes=10)
    alert = conversion_drop(
        start,
        start + timedelta(minutes=5),
        FunnelCounts(views=500, purchases=0),
        FunnelCounts(views=5000, purchases=200),
        ConversionRule(),
    )
    assert alert is not None
    await write(pipeline, "alerts", alert)
    app: Litestar = create_app(pipeline, ApiSettings(ws_shop_interval_s=0.05))
    async for live in running(app):
        async with AsgiWebSocket(live, "/ws/shop") as ws:
            frame = await ws.receive_json()

    [shown] = frame["alerts"]
    assert (shown["alert_id"], shown["domain"], shown["kind"]) == (
        str(alert.alert_id),
        "shop",
        "conversion_drop",
    )
    assert shown["value"] == 0.0
    assert shown["threshold"] == 0.04


async def test_connections_share_one_read_of_the_tables_per_interval(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    find_alerts = pipeline.store.find_alerts

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await find_alerts(*args, **kwargs)

    monkeypatch.setattr(pipeline.store, "find_alerts", counted)
    # One interval lasts the whole test: one read is what every connection may cost.
    app = create_app(pipeline, ApiSettings(ws_shop_interval_s=3600))
    async for live in running(app):
        async with contextlib.AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(AsgiWebSocket(live, "/ws/shop")) for _ in range(5)
            ]
            frames = [await ws.receive_json() for ws in sockets]

    assert [f["type"] for f in frames] == ["shop"] * 5
    assert reads == 1
