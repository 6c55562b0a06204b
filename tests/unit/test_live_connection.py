"""One live-view connection: a client that stops reading is given up after the send
timeout, a client whose connection the server already closed is let go without an error,
and frames go out in paced batches. In every case the subscription is freed."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
import structlog

from pipeline.adapters.avro import alert_codec, reading_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.application.live import FanoutPacer, LiveFilter, LiveReading
from pipeline.application.live_feed import LiveFeed
from pipeline.domain.sensors import Reading
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


def a_feed(clock: ManualClock, log: InMemoryEventLog | None = None) -> LiveFeed:
    registry = InMemorySchemaRegistry()
    return LiveFeed(
        log=log or InMemoryEventLog(),
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


class ClosedByServerSocket:
    """A connection uvicorn has already closed (the client's close handshake raced a send):
    every send after the first is refused as uvicorn refuses it."""

    def __init__(self) -> None:
        self.sends = 0

    async def send_text(self, text: str) -> None:
        self.sends += 1
        if self.sends > 1:
            raise RuntimeError(
                "Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."
            )

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # the disconnect message has not been read yet
        raise AssertionError("unreachable")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        raise RuntimeError("Unexpected ASGI message 'websocket.close'")


async def test_a_connection_the_server_closed_is_let_go_without_an_error(
    clock: ManualClock,
) -> None:
    feed = a_feed(clock)
    socket = ClosedByServerSocket()
    settings = ApiSettings(ws_heartbeat_s=0.01)  # the second send comes quickly
    connection = ws.LiveConnection(socket, feed, settings)  # type: ignore[arg-type]
    try:
        with structlog.testing.capture_logs() as logs:
            await asyncio.wait_for(connection.serve(LiveFilter()), timeout=3)
        clients_after = feed.hub.clients
    finally:
        await feed.aclose()

    assert socket.sends == 2
    assert [entry for entry in logs if entry["log_level"] in {"error", "critical"}] == []
    assert clients_after == 0


async def test_a_client_that_stops_reading_is_given_up_and_unsubscribed(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws, "SEND_TIMEOUT_S", 0.2)
    feed = a_feed(clock)
    socket = StalledSocket()
    connection = ws.LiveConnection(socket, feed, ApiSettings())  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(connection.serve(LiveFilter()), timeout=3)
        clients_after = feed.hub.clients
    finally:
        await feed.aclose()

    assert socket.sends == 1  # the `subscribed` frame, never delivered
    assert clients_after == 0


class InstantSocket:
    """A client with room in its buffer: sends never wait. Records every frame sent."""

    def __init__(self, sent: list[str]) -> None:
        self._sent = sent

    async def send_text(self, text: str) -> None:
        self._sent.append(text)

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        return None


async def test_busy_connections_leave_the_event_loop_to_other_work(clock: ManualClock) -> None:
    feed = a_feed(clock)
    pacer = FanoutPacer(frames_per_turn=32)
    sent: list[str] = []
    connections = [
        ws.LiveConnection(InstantSocket(sent), feed, ApiSettings(), pacer=pacer)  # type: ignore[arg-type]
        for _ in range(20)
    ]
    serving = [asyncio.create_task(c.serve(LiveFilter())) for c in connections]
    readings = [
        LiveReading(
            reading=Reading(
                sensor_id=f"t-{i}",
                sensor_type="temperature",
                value=20.0,
                unit="celsius",
                timestamp=clock.now(),
                location="lab",
            )
        )
        for i in range(200)
    ]
    try:
        while len(sent) < len(connections):  # every client has its `subscribed` frame
            await asyncio.sleep(0)
        feed.hub.publish(*readings)  # 4,000 frames to send at once

        sent_after_each_pass = []
        for _ in range(10):  # other work: one step per pass of the event loop
            await asyncio.sleep(0)
            sent_after_each_pass.append(len(sent))
        async with asyncio.timeout(10):
            while len(sent) < len(connections) * (1 + len(readings)):
                await asyncio.sleep(0.01)
    finally:
        for task in serving:
            task.cancel()
        await asyncio.gather(*serving, return_exceptions=True)
        await feed.aclose()

    per_pass = [b - a for a, b in itertools.pairwise([len(connections), *sent_after_each_pass])]
    assert max(per_pass) <= 2 * pacer.frames_per_turn, per_pass
    assert len(sent) == 20 * 201  # and nothing was lost on the way
