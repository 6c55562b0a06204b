"""The API on the real PostgreSQL store: the same answers as on the in-memory store."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import ApiSettings, Settings
from tests.api.conftest import API_KEY, API_KEY_HASH, minutes_ago, reading, store_readings
from tests.databases import fresh_database


@pytest.mark.integration
async def test_the_api_reads_and_acknowledges_on_postgres(clock: ManualClock) -> None:
    async with fresh_database("api") as url:
        store = SqlSensorStore(create_engine(url, pool_size=2))
        pipeline = await bootstrap(
            Settings(),
            log=InMemoryEventLog(),
            registry=InMemorySchemaRegistry(),
            store=store,
            clock=clock,
        )
        try:
            alerts = await store_readings(
                store,
                [
                    reading(minutes_ago(clock, 3), sensor="temp-a", value=20.0),
                    reading(minutes_ago(clock, 2), sensor="temp-b", value=80.0),
                    reading(
                        minutes_ago(clock, 1), sensor="hum-a", value=95.0, sensor_type="humidity"
                    ),
                ],
            )
            app = create_app(pipeline, ApiSettings(api_key_hashes=[API_KEY_HASH]))
            # httpx's ASGI transport runs the app on this test's event loop, where the
            # engine's asyncpg connections live (Litestar's test clients use another loop).
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                ready = await client.get("/ready")
                latest = await client.get("/api/v1/sensors/latest", params={"limit": 2})
                stats = await client.get("/api/v1/sensors/stats", params={"time_window_minutes": 5})
                aggregates = await client.get("/api/v1/sensors/temp-a/aggregates")
                unknown = await client.get("/api/v1/sensors/nobody/aggregates")
                page = await client.get("/api/v1/alerts", params={"limit": 1})
                rest = await client.get(
                    "/api/v1/alerts", params={"limit": 1, "cursor": page.json()["next_cursor"]}
                )
                acked = await client.post(
                    f"/api/v1/alerts/{alerts[0].alert_id}/ack", headers={"X-API-Key": API_KEY}
                )
                clock.advance(timedelta(minutes=1))
                again = await client.post(
                    f"/api/v1/alerts/{alerts[0].alert_id}/ack", headers={"X-API-Key": API_KEY}
                )
                open_ = await client.get("/api/v1/alerts", params={"acknowledged": "false"})
        finally:
            await pipeline.aclose()

    assert ready.json()["checks"]["database"] == "ok"
    assert [r["sensor_id"] for r in latest.json()["readings"]] == ["hum-a", "temp-b"]
    body = stats.json()
    assert (body["count"], body["active_sensors"], body["alert_count"]) == (3, 3, 2)
    assert body["by_type"]["temperature"]["mean"] == pytest.approx(50.0)
    assert [w["count"] for w in aggregates.json()["aggregates"]] == [1]
    assert unknown.status_code == 404
    assert [a["source"] for a in page.json()["items"] + rest.json()["items"]] == ["hum-a", "temp-b"]
    assert rest.json()["next_cursor"] is None
    assert acked.status_code == 200
    assert again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
    assert [a["source"] for a in open_.json()["items"]] == ["hum-a"]
