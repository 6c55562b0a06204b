"""Security headers on every HTTP response (REST, health, the OpenAPI document, the docs
page, the dashboard, errors), and CORS only for the origins the settings name."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import ApiSettings

Client = AsyncTestClient[Litestar]

EVERY_KIND_OF_RESPONSE = [
    "/api/v1/sensors/latest",
    "/api/v1/sensors/stats",
    "/api/v1/alerts",
    "/api/v1/sensors/latest?limit=0",  # a 400 problem
    "/api/v1/no-such-thing",  # a 404 problem
    "/health",
    "/ready",
    "/openapi.json",
    "/docs",
    "/schema/openapi.json",
    "/",
    "/static/dashboard.js",
    "/static/docs.js",
]


@pytest.mark.parametrize("path", EVERY_KIND_OF_RESPONSE)
async def test_every_response_carries_the_security_headers(client: Client, path: str) -> None:
    headers = (await client.get(path)).headers

    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy  # no inline script, nothing from elsewhere
    assert "frame-ancestors 'none'" in policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


async def test_an_acknowledgement_refused_for_want_of_a_key_carries_them_too(
    client: Client,
) -> None:
    response = await client.post("/api/v1/alerts/00000000-0000-0000-0000-000000000000/ack")

    assert response.status_code == 401
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_docs_page_needs_no_inline_script_or_style(client: Client) -> None:
    page = (await client.get("/docs")).text

    assert "<script>" not in page
    assert "<style>" not in page
    assert 'src="/static/docs.js"' in page
    assert 'data-spec="/openapi.json"' in page


ORIGIN = "https://ops.example.com"


async def test_cors_is_off_by_default(client: Client) -> None:
    response = await client.get("/api/v1/sensors/latest", headers={"Origin": ORIGIN})
    preflight = await client.options(
        "/api/v1/sensors/latest",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )

    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers


async def test_configured_origins_may_call_the_api_with_a_key(pipeline: Pipeline) -> None:
    app = create_app(pipeline, ApiSettings(cors_origins=[ORIGIN]))
    async with AsyncTestClient(app) as client:
        allowed = await client.get("/api/v1/sensors/latest", headers={"Origin": ORIGIN})
        preflight = await client.options(
            "/api/v1/alerts/00000000-0000-0000-0000-000000000000/ack",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-API-Key",
            },
        )
        other = await client.get(
            "/api/v1/sensors/latest", headers={"Origin": "https://elsewhere.example"}
        )

    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.status_code in {200, 204}
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in other.headers
