"""`/ws/shop`: the shop's live view over a WebSocket.

The shop job writes its windows when they close (a minute, five minutes), so the live view is
a snapshot of its tables rather than a stream of events: every
`PIPELINE_API__WS_SHOP_INTERVAL_S` seconds (default 2) the app reads the last hour's funnel
and revenue, the current top products and the latest shop alerts — once for all the
connections (`SharedPoll`, running while any is open) — and sends them to each as one JSON
text frame when they changed since the last one it sent (a new connection gets the latest
at once):

    {"type": "shop", "funnel": {<GET /api/v1/shop/funnel>},
     "revenue": {<GET /api/v1/shop/revenue>}, "top_products": {<GET …/top-products>},
     "alerts": [<alert as in GET /api/v1/alerts, domain "shop">, …]}

Guarded like the read endpoints (an API key in the `X-API-Key` header or the `api_key`
query parameter when reads need one). A client message is not expected: any is ignored. A
store that does not answer is logged and retried at the next interval."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers.websocket_handlers import WebsocketRouteHandler

from pipeline.application.ports import AlertFilter
from pipeline.application.shared_poll import SharedPoll
from pipeline.domain.alerts import AlertDomain
from pipeline.entrypoints.api.models import AlertOut
from pipeline.entrypoints.api.routes.shop import shop_funnel, shop_revenue, shop_top_products
from pipeline.entrypoints.api.shop_models import ShopFunnel, ShopRevenue, ShopTopProducts
from pipeline.entrypoints.api.ws import live_key_guard
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import ApiSettings

SHOP_LIVE_PATH = "/ws/shop"
ALERTS_SHOWN = 20
_POLL = "shop_live_poll"


class ShopFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="shop"):
    """One snapshot of the shop's tables."""

    funnel: ShopFunnel
    revenue: ShopRevenue
    top_products: ShopTopProducts
    alerts: list[AlertOut]


async def shop_snapshot(pipeline: Pipeline) -> ShopFrame:
    """The last hour's funnel and revenue, the top products now, the latest shop alerts."""
    now = pipeline.clock.now()
    since = now - timedelta(hours=1)
    alerts = await pipeline.store.find_alerts(
        AlertFilter(domain=AlertDomain.SHOP), limit=ALERTS_SHOWN
    )
    return ShopFrame(
        funnel=await shop_funnel(pipeline, since, now),
        revenue=await shop_revenue(pipeline, since, now, None),
        top_products=await shop_top_products(pipeline, now, 10),
        alerts=[AlertOut.of(a) for a in alerts],
    )


def live_shop(settings: ApiSettings) -> WebsocketRouteHandler:
    """The `/ws/shop` handler, guarded like the read endpoints."""
    interval = settings.ws_shop_interval_s
    guards = [live_key_guard(settings.api_key_hashes)] if settings.require_key_for_reads else []

    def poll_of(state: State) -> SharedPoll:
        """The app's one poll of the shop's tables (made by its first connection)."""
        poll: SharedPoll | None = state.get(_POLL)
        if poll is None:
            pipeline: Pipeline = state.pipeline

            async def read() -> bytes:
                return msgspec.json.encode(await shop_snapshot(pipeline))

            poll = state[_POLL] = SharedPoll(read, interval, "live-shop")
        return poll

    @websocket(SHOP_LIVE_PATH, guards=guards, name="live-shop")
    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        listener = poll_of(socket.app.state).listen()
        # The client only ever closes: a receive that returns ends the connection.
        closed = asyncio.get_running_loop().create_task(_until_closed(socket))
        try:
            while True:
                frame = asyncio.ensure_future(listener.next())
                await asyncio.wait([closed, frame], return_when=asyncio.FIRST_COMPLETED)
                if not frame.done():
                    frame.cancel()
                    break
                await socket.send_text(frame.result().decode())
        except WebSocketDisconnect:
            pass
        finally:
            await listener.close()
            closed.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await closed

    return handler


async def _until_closed(socket: WebSocket[Any, Any, Any]) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")
