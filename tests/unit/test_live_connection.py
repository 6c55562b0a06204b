"""A WebSocket client that stops reading is given up after the send timeout: its
subscription is freed and it never holds the server (or its shutdown) for ever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.adapters.avro import alert_codec, reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.application.live import LiveFilter
from pipeline.application.live_feed import LiveFeed
from pipeline.entrypoints.api import ws
from pipeline.entrypoints.settings import ApiSettings


class StalledSocket:
    """The server side of a client that completed the handshake and stopped reading:
    every send waits for a buffer that never drains; nothing is ever received."""

    def __init__(self) -> None:
        self.sends = 0

    async def send_text(self, text: str) -> None:
        self.sends += 1
        await asyncio.Event().wait()

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await asyncio.Event().wait()  # closing waits on the same stalled buffer


async def test_a_client_that_stops_reading_is_given_up_and_unsubscribed(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws, "SEND_TIMEOUT_S", 0.2)
    registry = InMemorySchemaRegistry()
    feed = LiveFeed(
        log=InMemoryEventLog(),
        store=InMemoryCheckpointStore({}),
        clock=clock,
        reading_codec=reading_codec(registry, "readings"),
        alert_codec=alert_codec(registry, "alerts"),
        readings_topic="readings",
        alerts_topic="alerts",
        lag_group="g",
        reader_group_prefix="test",
        poll_timeout=0.02,
    )
    socket = StalledSocket()
    connection = ws.LiveConnection(socket, feed, ApiSettings())  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(connection.serve(LiveFilter()), timeout=3)
        clients_after = feed.hub.clients
    finally:
        await feed.aclose()

    assert socket.sends == 1  # the `subscribed` frame, never delivered
    assert clients_after == 0
