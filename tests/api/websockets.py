"""A WebSocket client for tests that drives an ASGI app in the test's own event loop.

Litestar's test client runs WebSocket sessions on a portal thread with its own loop; the
in-memory pipeline must be used from one loop, so the API tests talk ASGI directly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from litestar import Litestar


class WebSocketClosed(Exception):
    """The server closed the connection (or refused it before accepting)."""

    def __init__(self, code: int, reason: str, *, accepted: bool) -> None:
        super().__init__(f"closed with {code}: {reason}")
        self.code = code
        self.reason = reason
        self.accepted = accepted


class AsgiWebSocket:
    """One WebSocket connection to `app` at `path`."""

    def __init__(
        self,
        app: Litestar,
        path: str,
        params: Mapping[str, str | Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._app = app
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(dict(params or {}), doseq=True).encode(),
            "headers": [(b"host", b"testserver")]
            + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "subprotocols": [],
            "extensions": {},
            "state": {},
        }

    async def __aenter__(self) -> AsgiWebSocket:
        self._task = asyncio.create_task(self._app(self._scope, self._to_app.get, self._send))  # type: ignore[arg-type]
        await self._to_app.put({"type": "websocket.connect"})
        first = await asyncio.wait_for(self._from_app.get(), 5)
        if first["type"] == "websocket.close":
            await self._finish()
            raise WebSocketClosed(first.get("code", 1000), first.get("reason", ""), accepted=False)
        assert first["type"] == "websocket.accept", first
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        await self._finish()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._from_app.put(message)

    async def _finish(self) -> None:
        assert self._task is not None
        await asyncio.wait_for(self._task, 5)

    async def receive_json(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame, decoded; WebSocketClosed if the server closed instead."""
        message = await asyncio.wait_for(self._from_app.get(), timeout)
        if message["type"] == "websocket.close":
            raise WebSocketClosed(
                message.get("code", 1000), message.get("reason", ""), accepted=True
            )
        frame: dict[str, Any] = json.loads(message["text"])
        return frame

    async def receive_until(self, frame_type: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame of `frame_type`, skipping others (stats, heartbeats)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.receive_json(max(0.0, deadline - loop.time()))
            if frame["type"] == frame_type:
                return frame

    async def receive_each(self, *frame_types: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first frame of each of `frame_types`, by type, in whatever order they come
        (others skipped): events of different topics may reach the feed in either order."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        found: dict[str, dict[str, Any]] = {}
        while len(found) < len(set(frame_types)):
            frame = await self.receive_json(max(0.0, deadline - loop.time()))
            if frame["type"] in frame_types:
                found.setdefault(frame["type"], frame)
        return found

    async def send_json(self, data: object) -> None:
        """Send `data` as a JSON text frame."""
        await self._to_app.put({"type": "websocket.receive", "text": json.dumps(data)})

    async def send_text(self, text: str) -> None:
        """Send a text frame."""
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        await self._to_app.put({"type": "websocket.receive", "bytes": data})

    def pending(self) -> int:
        """Frames received and not yet read."""
        return self._from_app.qsize()


async def running(app: Litestar) -> AsyncIterator[Litestar]:
    """`app` with its lifespan entered, in this event loop, as under uvicorn (the in-memory
    log is bound to one loop; Litestar's test client runs it on a portal thread). The lifespan
    runs in a task of its own: fixtures set up and tear down in different tasks."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(serve())
    await asyncio.wait_for(started.wait(), 5)
    try:
        yield app
    finally:
        stop.set()
        await task
