"""`/metrics` of the API process: request durations by route template and status, live-view
clients and dropped frames, in Prometheus' text format."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from prometheus_client.parser import text_string_to_metric_families

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import ApiSettings, Settings
from tests.api.conftest import reading
from tests.api.websockets import AsgiWebSocket, running

PATH = "/ws/sensors"


@pytest.fixture
async def pipeline(store: InMemorySensorStore, clock: ManualClock) -> AsyncIterator[Pipeline]:
    pipeline = await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=store,
        clock=clock,
        metrics=True,
    )
    await pipeline.ensure_topics()
    yield pipeline
    await pipeline.aclose()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(app: Litestar) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.get("/metrics")


async def test_requests_are_counted_by_route_template_and_status(
    pipeline: Pipeline, api_settings: ApiSettings
) -> None:
    async for app in running(create_app(pipeline, api_settings)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            before = samples((await client.get("/metrics")).text)
            await client.get("/api/v1/sensors/temp-1/aggregates")
            await client.get("/api/v1/sensors/temp-2/aggregates")
            await client.get("/api/v1/alerts", params={"limit": "0"})
            await client.get("/no/such/route")
            response = await client.get("/metrics")

    after = samples(response.text)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")

    def count(path: str, status: str) -> float:
        key = frozenset(
            {"app_name": "pipeline", "method": "GET", "path": path, "status_code": status}.items()
        )
        name = "pipeline_api_request_duration_seconds_count"
        return after.get((name, key), 0.0) - before.get((name, key), 0.0)

    assert count("/api/v1/sensors/{sensor_id}/aggregates", "404") == 2
    assert count("/api/v1/alerts", "400") == 1
    assert not [labels for (_, labels) in after if ("path", "/no/such/route") in labels]


async def test_live_clients_and_dropped_frames_are_exposed(
    pipeline: Pipeline, api_settings: ApiSettings, clock: ManualClock
) -> None:
    settings = api_settings.model_copy(update={"ws_queue_size": 1})
    topic = pipeline.settings.topics.sensor_readings
    payloads = [
        await pipeline.reading_codec.encode(reading(clock.now(), sensor=f"burst-{i}"))
        for i in range(20)
    ]
    async for app in running(create_app(pipeline, settings)):
        async with AsgiWebSocket(app, PATH) as ws:
            await ws.receive_json()
            for payload in payloads:
                await pipeline.log.publish(topic, None, payload)
            await ws.receive_until("dropped")
            during = samples((await scrape(app)).text)
        after = samples((await scrape(app)).text)

    assert during[("pipeline_websocket_clients", frozenset())] == 1
    assert during[("pipeline_websocket_dropped_frames_total", frozenset())] == 19
    assert after[("pipeline_websocket_clients", frozenset())] == 0
