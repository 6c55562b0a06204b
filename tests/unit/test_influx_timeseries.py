"""The InfluxDB adapter against a scripted HTTP server (aiohttp): what it sends on the v2
write API, chunking, retries with backoff on 429 and 5xx, and the one-line errors when the
server refuses the points or cannot be reached."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from pipeline.adapters.timeseries import InfluxTimeSeries
from pipeline.application.errors import TimeSeriesRejected, TimeSeriesUnavailable
from pipeline.application.ports.timeseries import Point

T0 = datetime(2026, 11, 25, 12, 0, 0, 123_000, tzinfo=UTC)


class Server:
    """Answers /api/v2/write with the scripted statuses, in order, then 204."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.bodies: list[str] = []
        self.queries: list[dict[str, str]] = []
        self.url = ""

    async def write(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.text())
        self.queries.append(dict(request.query))
        if self.script:
            status, headers = self.script.pop(0)
            body = '{"code": "invalid", "message": "unable to parse\\n line 1"}'
            return web.Response(status=status, headers=headers, text=body)
        return web.Response(status=204)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    fake = Server()
    app = web.Application()
    app.router.add_post("/api/v2/write", fake.write)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


def series(url: str, **options: float) -> InfluxTimeSeries:
    return InfluxTimeSeries(
        url=url,
        token="secret-token",
        org="acme",
        bucket="sensors",
        backoff_s=0.01,
        max_backoff_s=0.02,
        **options,  # type: ignore[arg-type]
    )


def point(i: int = 0, **fields: float | int) -> Point:
    return Point(
        measurement="sensor reading",
        tags={"sensor_id": "temp,0001", "sensor_type": "temperature"},
        fields=fields or {"value": 21.5, "count": 3},
        time=T0 + timedelta(seconds=i),
    )


async def test_points_are_sent_as_escaped_line_protocol_at_millisecond_precision(
    server: Server,
) -> None:
    adapter = series(server.url)

    await adapter.write([point()])
    await adapter.close()

    assert server.bodies == [
        "sensor\\ reading,sensor_id=temp\\,0001,sensor_type=temperature "
        "count=3i,value=21.5 1795608000123"
    ]
    assert server.queries[0] == {"org": "acme", "bucket": "sensors", "precision": "ms"}


async def test_more_points_than_a_request_holds_go_out_in_chunks(server: Server) -> None:
    adapter = series(server.url, batch_size=3)

    await adapter.write([point(i) for i in range(7)])
    await adapter.close()

    assert [len(body.splitlines()) for body in server.bodies] == [3, 3, 1]


async def test_a_429_and_a_503_are_retried_until_the_server_takes_the_points(
    server: Server,
) -> None:
    server.script = [(429, {"Retry-After": "0"}), (503, {})]
    adapter = series(server.url, retries=2)

    await adapter.write([point()])
    await adapter.close()

    assert len(server.bodies) == 3
    assert server.bodies[0] == server.bodies[2]


async def test_a_server_failing_past_the_retries_is_unavailable_naming_it(
    server: Server,
) -> None:
    server.script = [(500, {})] * 3
    adapter = series(server.url, retries=2)

    with pytest.raises(TimeSeriesUnavailable) as raised:
        await adapter.write([point()])
    await adapter.close()

    assert len(server.bodies) == 3
    message = str(raised.value)
    assert server.url in message
    assert "HTTP 500" in message
    assert "\n" not in message


async def test_points_the_server_refuses_are_rejected_at_once_in_one_line(server: Server) -> None:
    server.script = [(400, {})]
    adapter = series(server.url, retries=5)

    with pytest.raises(TimeSeriesRejected) as raised:
        await adapter.write([point()])
    await adapter.close()

    assert len(server.bodies) == 1
    message = str(raised.value)
    assert "HTTP 400" in message
    assert "unable to parse line 1" in message
    assert "\n" not in message


async def test_an_unreachable_server_is_one_error_naming_it_and_no_library_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = series("http://127.0.0.1:9", retries=2)  # discard: nothing listens

    with caplog.at_level(logging.INFO), pytest.raises(TimeSeriesUnavailable) as raised:
        await adapter.write([point()])
    with pytest.raises(TimeSeriesUnavailable):
        await adapter.ping()
    await adapter.close()

    message = str(raised.value)
    assert message.startswith("time-series server http://127.0.0.1:9 unreachable")
    assert "after 3 attempts" in message
    assert "\n" not in message
    assert [r for r in caplog.records if r.name.startswith(("influxdb_client", "aiohttp"))] == []
