"""`/api/v1/alerts`: filters, cursor pagination, and acknowledgement behind an API key."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemorySensorStore
from pipeline.adapters.memory.sensor_tables import AlertRow
from pipeline.domain.alerts import Alert, AlertDomain, AlertKind, Severity
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import ApiSettings
from tests.api.conftest import API_KEY, API_KEY_HASH, minutes_ago, reading, store_readings

Client = AsyncTestClient[Litestar]


async def five_alerts(store: InMemorySensorStore, clock: ManualClock) -> list[Alert]:
    """Alerts on temp-0..temp-4, one minute apart, temp-4 newest; temp-0 and temp-1 critical."""
    readings = [
        reading(minutes_ago(clock, 10 - i), sensor=f"temp-{i}", value=80.0 if i < 2 else 50.0)
        for i in range(5)
    ]
    return await store_readings(store, readings)


def sources(body: dict[str, object]) -> list[str]:
    items = body["items"]
    assert isinstance(items, list)
    return [item["source"] for item in items]


async def test_alerts_are_listed_newest_first(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    alerts = await five_alerts(store, clock)

    response = await client.get("/api/v1/alerts")

    assert response.status_code == 200
    body = response.json()
    assert sources(body) == ["temp-4", "temp-3", "temp-2", "temp-1", "temp-0"]
    assert body["next_cursor"] is None
    assert body["items"][0]["alert_id"] == str(alerts[4].alert_id)


async def test_alert_filters_combine(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await five_alerts(store, clock)

    critical = await client.get("/api/v1/alerts", params={"severity": "critical"})
    one = await client.get("/api/v1/alerts", params={"source": "temp-3"})
    recent = await client.get(
        "/api/v1/alerts",
        params={
            "since": minutes_ago(clock, 8).isoformat(),
            "until": minutes_ago(clock, 6).isoformat(),
        },
    )

    assert sources(critical.json()) == ["temp-1", "temp-0"]
    assert sources(one.json()) == ["temp-3"]
    assert sources(recent.json()) == ["temp-3", "temp-2"]


async def test_the_cursor_walks_every_alert_exactly_once(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await five_alerts(store, clock)

    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    pages = 0
    while True:
        body = (await client.get("/api/v1/alerts", params=params)).json()
        seen += sources(body)
        pages += 1
        if body["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": body["next_cursor"]}

    assert pages == 3
    assert seen == ["temp-4", "temp-3", "temp-2", "temp-1", "temp-0"]


async def test_alerts_filter_by_stream_and_check_and_carry_their_details(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await five_alerts(store, clock)
    fraud = Alert(
        alert_id=uuid.uuid4(),
        source="acct-9",
        kind=AlertKind.FRAUD,
        severity=Severity.CRITICAL,
        message="card testing on acct-9",
        timestamp=minutes_ago(clock, 1),
        domain=AlertDomain.PAYMENTS,
        score=0.8,
        reasons=("card_testing",),
    )
    store.tables.alerts[fraud.alert_id] = AlertRow(fraud)

    payments = (await client.get("/api/v1/alerts", params={"domain": "payments"})).json()
    rules = (await client.get("/api/v1/alerts", params={"detector": "rule"})).json()
    thresholds = await client.get("/api/v1/alerts", params={"detector": "threshold"})

    assert sources(payments) == ["acct-9"]
    [item] = payments["items"]
    assert (item["domain"], item["detector"], item["score"], item["reasons"]) == (
        "payments",
        "rule",
        0.8,
        ["card_testing"],
    )
    assert sources(rules) == ["acct-9"]
    assert sources(thresholds.json()) == ["temp-4", "temp-3", "temp-2", "temp-1", "temp-0"]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "MTox"},  # base64 of "1:1": the shape is right, the id is not
        {"severity": "urgent"},
        {"domain": "weather"},
        {"detector": "hunch"},
        {"acknowledged": "perhaps"},
        {"limit": "0"},
        {"since": "2026-13-45"},
    ],
)
async def test_bad_alert_filters_are_400_problems(client: Client, params: dict[str, str]) -> None:
    response = await client.get("/api/v1/alerts", params=params)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert next(iter(params)) in response.json()["detail"]


async def test_acknowledging_needs_an_api_key(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    alerts = await five_alerts(store, clock)
    url = f"/api/v1/alerts/{alerts[0].alert_id}/ack"

    without = await client.post(url)
    wrong = await client.post(url, headers={"X-API-Key": "guess"})

    assert without.status_code == 401
    assert wrong.status_code == 401
    assert without.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
    listed = (await client.get("/api/v1/alerts", params={"acknowledged": "true"})).json()
    assert listed["items"] == []


async def test_acknowledging_is_idempotent_and_keeps_the_first_time(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    alerts = await five_alerts(store, clock)
    url = f"/api/v1/alerts/{alerts[0].alert_id}/ack"
    first_time = clock.now()

    first = await client.post(url, headers={"X-API-Key": API_KEY})
    clock.advance(timedelta(minutes=5))
    again = await client.post(url, headers={"X-API-Key": API_KEY})

    assert first.status_code == 200
    assert first.json()["acknowledged"] is True
    assert first.json()["acknowledged_at"] == first_time.isoformat().replace("+00:00", "Z")
    assert again.json() == first.json()
    acked = (await client.get("/api/v1/alerts", params={"acknowledged": "true"})).json()
    open_ = (await client.get("/api/v1/alerts", params={"acknowledged": "false"})).json()
    assert sources(acked) == ["temp-0"]
    assert len(open_["items"]) == 4


async def test_acknowledging_an_unknown_alert_is_a_404(client: Client) -> None:
    response = await client.post(
        f"/api/v1/alerts/{uuid.uuid4()}/ack", headers={"X-API-Key": API_KEY}
    )

    assert response.status_code == 404


async def test_acknowledging_a_malformed_id_is_a_400(client: Client) -> None:
    response = await client.post("/api/v1/alerts/not-a-uuid/ack", headers={"X-API-Key": API_KEY})

    assert response.status_code == 400
    assert "alert_id" in response.json()["detail"]


async def test_without_configured_keys_nobody_can_acknowledge(
    pipeline: Pipeline, store: InMemorySensorStore, clock: ManualClock
) -> None:
    alerts = await five_alerts(store, clock)
    app = create_app(pipeline, ApiSettings(api_key_hashes=[]))

    async with AsyncTestClient(app) as client:
        response = await client.post(
            f"/api/v1/alerts/{alerts[0].alert_id}/ack", headers={"X-API-Key": API_KEY}
        )

    assert response.status_code == 401


async def test_reads_can_be_made_to_require_a_key(pipeline: Pipeline) -> None:
    settings = ApiSettings(api_key_hashes=[API_KEY_HASH], require_key_for_reads=True)

    async with AsyncTestClient(create_app(pipeline, settings)) as client:
        anonymous = await client.get("/api/v1/alerts")
        with_key = await client.get("/api/v1/sensors/latest", headers={"X-API-Key": API_KEY})
        health = await client.get("/health")

    assert anonymous.status_code == 401
    assert with_key.status_code == 200
    assert health.status_code == 200


async def test_reads_are_open_by_default(client: Client) -> None:
    response = await client.get("/api/v1/alerts")

    assert response.status_code == 200
