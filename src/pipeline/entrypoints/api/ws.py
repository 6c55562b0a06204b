"""`/ws/sensors`: the live view over a WebSocket.

Every connection subscribes to the process's one `LiveFeed` (started by the first client,
stopped by `live_feed_lifespan` with the app) and gets JSON text frames (see `live_frames`).
The filter comes from the query (`sensor_type`, `sensor_id`, `alerts_only`, `domain`) and can be
replaced by a `subscribe` message. A bad query filter closes the connection with 1008; a bad
message gets an error frame and the connection stays open."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from litestar import Litestar, WebSocket, websocket
from litestar.connection import ASGIConnection
from litestar.exceptions import WebSocketDisconnect, WebSocketException
from litestar.handlers.base import BaseRouteHandler
from litestar.handlers.websocket_handlers import WebsocketRouteHandler
from litestar.status_codes import WS_1001_GOING_AWAY
from litestar.types import Guard

from pipeline.application.live import (
    DroppedNotice,
    FanoutPacer,
    InvalidLiveFilter,
    LiveFilter,
    Subscription,
    parse_live_filter,
)
from pipeline.application.live_feed import LiveFeed
from pipeline.entrypoints.api.auth import API_KEY_HEADER, key_matches
from pipeline.entrypoints.api.live_frames import (
    EncodedEvents,
    ErrorFrame,
    Frame,
    HeartbeatFrame,
    PongFrame,
    encode_frame,
    frame_of,
    subscribed_frame,
)
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import ApiSettings

LIVE_PATH = "/ws/sensors"
WS_1008_POLICY_VIOLATION = 1008
WS_1011_INTERNAL_ERROR = 1011
WS_1013_TRY_AGAIN_LATER = 1013
WS_4401_UNAUTHORIZED = 4401
"""Private-use close code: HTTP 401 in the 4000 range, as Litestar maps HTTP errors."""
MAX_CLIENT_MESSAGE = 16_384
"""Longest client message read, in characters; clients only send small JSON objects."""
SEND_TIMEOUT_S = 10.0
"""How long a batch of frames may wait for a client to read before the client is given up."""
SEND_BATCH = 16
"""Most frames one client is sent in one go, before the next client's turn."""
_FALSE, _TRUE = frozenset({"false", "0", "no"}), frozenset({"true", "1", "yes"})
_SUBSCRIBE_FIELDS = frozenset({"type", "sensor_types", "sensor_ids", "alerts_only", "domains"})

log = structlog.get_logger(__name__)


def live_feed_for(pipeline: Pipeline, *, lag_group: str | None = None) -> LiveFeed:
    """The live feed over `pipeline`; its lag is that of `lag_group` (default: the sensors
    worker's group)."""
    settings = pipeline.settings
    prefix = settings.worker.group_id_prefix
    return LiveFeed(
        log=pipeline.log,
        store=pipeline.checkpoint,
        clock=pipeline.clock,
        reading_codec=pipeline.reading_codec,
        alert_codec=pipeline.alert_codec,
        readings_topic=settings.topics.sensor_readings,
        alerts_topic=settings.topics.system_alerts,
        lag_group=lag_group or pipeline.group_id("sensors"),
        reader_group_prefix=prefix,
        max_clock_skew=timedelta(seconds=settings.worker.max_clock_skew_seconds),
    )


def live_feed_lifespan(
    *, lag_group: str | None = None
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan putting the live feed in `app.state.live_feed` (after the pipeline is there:
    list it after the lifespan that bootstraps the pipeline) and closing it on shutdown, which
    closes every live connection with 1001 (going away)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        feed = live_feed_for(app.state.pipeline, lag_group=lag_group)
        app.state.live_feed = feed
        try:
            yield
        finally:
            await feed.aclose()

    return lifespan


def live_key_guard(key_hashes: list[str]) -> Guard:
    """Admit connections presenting an API key in the `X-API-Key` header or, since browsers
    cannot set headers on a WebSocket, in the `api_key` query parameter."""
    digests = [bytes.fromhex(h) for h in key_hashes]

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        key = connection.headers.get(API_KEY_HEADER) or connection.query_params.get("api_key")
        if not key or not key_matches(key, digests):
            # Refused before the upgrade: uvicorn answers the handshake with 403.
            raise WebSocketException(
                detail=f"a valid API key is required in the {API_KEY_HEADER} header "
                "or the api_key query parameter",
                code=WS_4401_UNAUTHORIZED,
            )

    return guard


def filter_from_query(query: Mapping[str, list[str]]) -> LiveFilter:
    """The filter of the connection's query: `sensor_type` (repeatable, or a comma list),
    `sensor_id` (repeatable), `alerts_only` (true/false), `domain` (repeatable, or a comma
    list: sensors, shop, payments, social)."""
    types = [t.strip() for value in query.get("sensor_type", []) for t in value.split(",")]
    domains = [d.strip() for value in query.get("domain", []) for d in value.split(",")]
    ids = query.get("sensor_id", [])
    flags = query.get("alerts_only", [])
    if len(flags) > 1:
        raise InvalidLiveFilter("alerts_only is given more than once")
    alerts_only: object = False
    if flags:
        flag = flags[0].strip().lower()
        alerts_only = True if flag in _TRUE else False if flag in _FALSE else flags[0][:20]
    domains = [d.strip() for value in query.get("domain", []) for d in value.split(",")]
    return parse_live_filter(
        sensor_types=types or None,
        sensor_ids=ids or None,
        alerts_only=alerts_only,
        domains=domains or None,
    )


def live_sensors(settings: ApiSettings) -> WebsocketRouteHandler:
    """The `/ws/sensors` handler, guarded like the read endpoints."""
    guards = [live_key_guard(settings.api_key_hashes)] if settings.require_key_for_reads else []

    @websocket(LIVE_PATH, guards=guards, name="live-sensors")
    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        try:
            live_filter = filter_from_query(socket.query_params.dict())
        except InvalidLiveFilter as error:
            await socket.close(WS_1008_POLICY_VIOLATION, _reason(str(error)))
            return
        feed: LiveFeed | None = getattr(socket.app.state, "live_feed", None)
        if feed is None:
            log.error("no live feed: the app was started without live_feed_lifespan")
            await socket.close(WS_1011_INTERNAL_ERROR, "the live feed is not running")
            return
        if feed.hub.clients >= settings.ws_max_clients:
            # Refused rather than served badly: every client costs memory and a share of the
            # event loop. 1013 tells the client to come back later (the dashboard retries).
            await socket.close(
                WS_1013_TRY_AGAIN_LATER,
                f"this API process serves at most {settings.ws_max_clients} live clients; "
                "try again later",
            )
            return
        # No await between the count above and the subscription in serve(): the cap holds.
        await LiveConnection(socket, feed, settings, events, pacer).serve(live_filter)

    # Shared by the app's connections.
    events = EncodedEvents()
    pacer = FanoutPacer()
    return handler


class LiveConnection:
    """One client: a sender draining its subscription (plus heartbeats) and a receiver
    answering its messages, sharing the socket under a lock."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        feed: LiveFeed,
        settings: ApiSettings,
        events: EncodedEvents | None = None,
        pacer: FanoutPacer | None = None,
    ):
        self._socket = socket
        self._feed = feed
        self._events = events if events is not None else EncodedEvents()
        self._pacer = pacer if pacer is not None else FanoutPacer()
        self._queue_size = settings.ws_queue_size
        self._heartbeat = settings.ws_heartbeat_s
        self._send_lock = asyncio.Lock()

    async def serve(self, live_filter: LiveFilter) -> None:
        """Serve until the client leaves (or the feed closes: 1001; a bug: 1011)."""
        subscription = self._feed.subscribe(live_filter, self._queue_size)
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._send(subscribed_frame(live_filter))
            sender = asyncio.create_task(self._send_events(subscription))
            tasks = [sender, asyncio.create_task(self._receive(subscription))]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise what ended it
            if sender in done:
                await self._close(WS_1001_GOING_AWAY, "the server is shutting down")
        except (WebSocketDisconnect, OSError):
            pass  # the client left (uvicorn reports a send to a gone client as an OSError)
        except Exception:
            log.exception("live connection failed")
            await self._close(WS_1011_INTERNAL_ERROR, "internal error")
        finally:
            # Also when this handler is cancelled: its helpers must not outlive it.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._feed.unsubscribe(subscription)

    async def _send_events(self, subscription: Subscription) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self._heartbeat
        while True:
            timeout = next_beat - loop.time()
            if timeout <= 0:
                await self._send(HeartbeatFrame(time=self._feed.now()))
                next_beat = loop.time() + self._heartbeat
                continue
            if subscription.pending():
                batch = await subscription.next_batch(SEND_BATCH)  # at once: no timer needed
            else:
                try:
                    # asyncio.timeout, not wait_for: no task per wait (the demo serves frames
                    # from the event loop its worker runs in).
                    async with asyncio.timeout(timeout):
                        batch = await subscription.next_batch(SEND_BATCH)
                except TimeoutError:
                    continue
            if batch is None:
                return  # the feed closed the subscription
            await self._pacer.turn(len(batch))
            await self._send_texts(
                # A DroppedNotice is this client's own; events are shared by every client.
                [
                    encode_frame(frame_of(event))
                    if isinstance(event, DroppedNotice)
                    else self._events.text(event)
                    for event in batch
                ]
            )

    async def _receive(self, subscription: Subscription) -> None:
        while True:
            message = await self._socket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(detail="client left", code=message.get("code", 1000))
            reply = self._answer(message.get("text"), subscription)
            if reply is not None:
                await self._send(reply)

    def _answer(self, text: object, subscription: Subscription) -> Frame | None:
        message = _client_message(text)
        if isinstance(message, ErrorFrame):
            return message
        kind = message.get("type")
        if kind == "ping":
            return PongFrame()
        if kind != "subscribe":
            return ErrorFrame(
                error="bad_message",
                detail='expected an object with "type": "subscribe" or "ping"',
            )
        try:
            live_filter = _subscribe_filter(message)
        except InvalidLiveFilter as error:
            return ErrorFrame(error="bad_subscribe", detail=str(error))
        subscription.filter = live_filter
        return subscribed_frame(live_filter)

    async def _send(self, frame: Frame) -> None:
        await self._send_texts([encode_frame(frame)])

    async def _send_texts(self, texts: list[str]) -> None:
        # A client that stops reading fills the server's write buffer and a send would wait
        # for ever: past the timeout it is dropped like a client that left (TimeoutError is
        # an OSError), its subscription freed. Closing it would wait on the same buffer.
        async with self._send_lock, asyncio.timeout(SEND_TIMEOUT_S):
            for text in texts:
                try:
                    await self._socket.send_text(text)
                except RuntimeError as error:
                    # ASGI servers should raise OSError for a send on a closed connection;
                    # uvicorn raises RuntimeError ("Unexpected ASGI message 'websocket.send',
                    # after sending 'websocket.close'") once it has closed it itself (the
                    # client's close handshake racing a send, a keep-alive timeout). Either
                    # way the client is gone, which is not an error.
                    raise WebSocketDisconnect(detail=str(error), code=1006) from error

    async def _close(self, code: int, reason: str) -> None:
        # The client may already be gone; there is nobody left to tell then.
        with contextlib.suppress(Exception):
            await self._socket.close(code, reason)


def _client_message(text: object) -> dict[str, Any] | ErrorFrame:
    """The JSON object a client sent, or the error frame saying why it is not one."""
    if not isinstance(text, str):
        return ErrorFrame(error="bad_message", detail="send JSON text frames, not binary")
    if len(text) > MAX_CLIENT_MESSAGE:
        return ErrorFrame(
            error="bad_message", detail=f"messages are at most {MAX_CLIENT_MESSAGE} characters"
        )
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        return ErrorFrame(error="bad_message", detail="not JSON")
    if not isinstance(message, dict):
        return ErrorFrame(error="bad_message", detail="expected a JSON object")
    return message


def _subscribe_filter(message: dict[str, Any]) -> LiveFilter:
    """The filter a `subscribe` message asks for (absent fields: any)."""
    unknown = sorted(set(message) - _SUBSCRIBE_FIELDS)
    if unknown:
        raise InvalidLiveFilter(f"unknown field {unknown[0][:40]!r}")
    return parse_live_filter(
        sensor_types=message.get("sensor_types"),
        sensor_ids=message.get("sensor_ids"),
        alerts_only=message.get("alerts_only", False),
        domains=message.get("domains"),
    )


def _reason(text: str) -> str:
    """`text` cut to fit a close frame (at most 123 bytes of UTF-8)."""
    encoded = text.encode()
    if len(encoded) <= 123:
        return text
    return encoded[:120].decode(errors="ignore") + "..."
