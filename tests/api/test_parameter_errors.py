"""A refused parameter is explained in words: what the parameter takes, never the
validator's terms (`Expected `int`, got `str``) or a regular expression; an unknown sensor
type is refused (as the live view refuses it) with the known types."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemorySensorStore
from tests.api.conftest import reading, store_readings

Client = AsyncTestClient[Litestar]

KNOWN = "known types: humidity, pressure, temperature"


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("/api/v1/sensors/latest?limit=1.5", "limit: must be a whole number from 1 to 1000"),
        ("/api/v1/sensors/latest?limit=0", "limit: must be a whole number from 1 to 1000"),
        ("/api/v1/alerts?limit=abc", "limit: must be a whole number from 1 to 1000"),
        (
            "/api/v1/sensors/stats?time_window_minutes=2000",
            "time_window_minutes: must be a whole number from 1 to 1440",
        ),
        (
            "/api/v1/sensors/latest?sensor_id=a%01b",
            "sensor_id: must be 1 to 200 characters, with no control characters",
        ),
        (
            "/api/v1/alerts?source=" + "x" * 201,
            "source: must be 1 to 200 characters, with no control characters",
        ),
        ("/api/v1/alerts?acknowledged=maybe", "acknowledged: must be true or false"),
        ("/api/v1/alerts?severity=fatal", "severity: must be one of: warning, critical"),
        (
            "/api/v1/alerts?since=yesterday",
            "since: must be a time in ISO 8601, e.g. 2026-11-25T12:00:00Z",
        ),
        (
            "/api/v1/sensors/temp-0001/aggregates?from=soon",
            "from: must be a time in ISO 8601, e.g. 2026-11-25T12:00:00Z",
        ),
    ],
)
async def test_a_refused_value_is_explained_in_words(client: Client, url: str, detail: str) -> None:
    response = await client.get(url)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["detail"] == detail
    assert "Expected" not in response.text
    assert "\\\\x" not in response.text  # no (double-escaped) regular expression


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/sensors/latest?sensor_type=plasma",
        "/api/v1/sensors/stats?sensor_type=plasma",
        "/api/v1/sensors/anomalies?sensor_type=plasma",
        "/api/v1/alerts?sensor_type=plasma",
    ],
)
async def test_an_unknown_sensor_type_is_refused_with_the_known_types(
    client: Client, url: str
) -> None:
    response = await client.get(url)

    assert response.status_code == 400
    assert response.json()["detail"] == f"sensor_type: unknown sensor type 'plasma'; {KNOWN}"


async def test_a_known_sensor_type_is_accepted(client: Client) -> None:
    response = await client.get("/api/v1/sensors/latest?sensor_type=humidity")

    assert response.status_code == 200


async def test_the_openapi_document_lists_the_known_sensor_types(client: Client) -> None:
    spec = (await client.get("/openapi.json")).json()
    parameters = spec["paths"]["/api/v1/sensors/latest"]["get"]["parameters"]
    [sensor_type] = [p for p in parameters if p["name"] == "sensor_type"]

    assert sensor_type["schema"]["enum"] == ["humidity", "pressure", "temperature"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/alerts?since=1800-01-01T00:00:00Z",
        "/api/v1/alerts?until=0001-01-01T00:00:00%2B23:00",  # before year 1 in UTC
        "/api/v1/alerts?since=9999-12-31T23:59:59-23:00",  # after year 9999 in UTC
        "/api/v1/sensors/anomalies?since=0001-01-01T00:00:00Z",
        "/api/v1/sensors/temp-0001/aggregates?to=0001-01-01T00:30:00Z",
        "/api/v1/alerts?cursor=-99999999999999999999_" + "f" * 32,
        "/api/v1/alerts?cursor=99999999999999999999_" + "0" * 32,
    ],
)
async def test_values_the_schema_allows_are_not_refused(
    client: Client, store: InMemorySensorStore, clock: ManualClock, url: str
) -> None:
    await store_readings(store, [reading(clock.now(), sensor="temp-0001")])

    response = await client.get(url)

    assert response.status_code == 200, response.text
