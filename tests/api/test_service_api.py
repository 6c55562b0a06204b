"""`/health`, `/ready`, the OpenAPI document, the offline docs page, and error shapes."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.application.errors import BrokerUnavailable, StoreUnavailable
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import ApiSettings, Settings

Client = AsyncTestClient[Litestar]


async def test_health_says_the_process_is_alive(client: Client) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_and_broker_answer(client: Client) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_not_ready_names_the_dependency_that_failed(pipeline: Pipeline) -> None:
    async def broken_ping() -> None:
        raise StoreUnavailable("connection refused")

    pipeline.store.ping = broken_ping  # type: ignore[method-assign]

    async with AsyncTestClient(create_app(pipeline, ApiSettings())) as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == "ok"
    assert "connection refused" in body["checks"]["database"]


async def test_a_store_outage_during_a_query_is_a_503_problem(pipeline: Pipeline) -> None:
    async def unavailable(**_: object) -> None:
        raise BrokerUnavailable("no brokers")

    pipeline.store.latest_readings = unavailable  # type: ignore[method-assign,assignment]

    async with AsyncTestClient(create_app(pipeline, ApiSettings())) as client:
        response = await client.get("/api/v1/sensors/latest")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "5"


async def test_a_bug_is_a_500_problem_without_internals(pipeline: Pipeline) -> None:
    async def bug(**_: object) -> None:
        raise RuntimeError("secret internals")

    pipeline.store.latest_readings = bug  # type: ignore[method-assign,assignment]

    async with AsyncTestClient(create_app(pipeline, ApiSettings())) as client:
        response = await client.get("/api/v1/sensors/latest")

    assert response.status_code == 500
    assert "secret" not in response.text


async def test_an_unknown_path_is_a_404_problem(client: Client) -> None:
    response = await client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json()["status"] == 404


async def test_the_openapi_document_lists_every_endpoint(client: Client) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    assert set(spec["paths"]) == {
        "/api/v1/sensors/latest",
        "/api/v1/sensors/stats",
        "/api/v1/sensors/anomalies",
        "/api/v1/sensors/{sensor_id}/aggregates",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}/ack",
        "/api/v1/shop/funnel",
        "/api/v1/shop/revenue",
        "/api/v1/shop/sessions",
        "/api/v1/shop/top-products",
        "/api/v1/payments/flagged",
        "/api/v1/payments/rules",
        "/api/v1/payments/transactions/{transaction_id}/outcome",
        "/api/v1/social/trending",
        "/api/v1/social/tags/{tag}/history",
        "/api/v1/social/posts/top",
        "/api/v1/social/authors/top",
        "/health",
        "/ready",
        "/metrics",
    }
    assert spec["components"]["securitySchemes"]["ApiKey"]["in"] == "header"
    assert spec["paths"]["/api/v1/alerts/{alert_id}/ack"]["post"]["security"] == [{"ApiKey": []}]


async def test_the_docs_page_is_self_contained(client: Client) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '"/openapi.json"' in page
    # Nothing is loaded from elsewhere: no external scripts, styles or fonts; its own
    # script comes from this origin.
    assert "http://" not in page
    assert "https://" not in page
    assert '<script src="/static/docs.js"' in page
    script = (await client.get("/static/docs.js")).text
    assert "http://" not in script
    assert "https://" not in script


async def test_the_app_reads_the_api_section_of_the_whole_settings(pipeline: Pipeline) -> None:
    settings = Settings(api=ApiSettings(require_key_for_reads=True))

    async with AsyncTestClient(create_app(pipeline, settings)) as client:
        response = await client.get("/api/v1/sensors/latest")

    assert response.status_code == 401


def _errors(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {code: r for code, r in operation["responses"].items() if int(code) >= 400}


async def test_every_documented_error_is_a_problem_json(client: Client) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = [op for item in spec["paths"].values() for op in item.values()]

    media_types = {
        media
        for operation in operations
        for code, response in _errors(operation).items()
        if code != "503" or "Readiness" not in str(response)  # /ready's own body
        for media in response.get("content", {})
    }
    assert media_types == {"application/problem+json"}


async def test_the_document_lists_each_operations_errors(pipeline: Pipeline) -> None:
    settings = ApiSettings(api_key_hashes=[], require_key_for_reads=True)
    async with AsyncTestClient(create_app(pipeline, settings)) as client:
        guarded = (await client.get("/openapi.json")).json()["paths"]
    async with AsyncTestClient(create_app(pipeline, ApiSettings())) as client:
        open_ = (await client.get("/openapi.json")).json()["paths"]

    assert set(_errors(open_["/api/v1/alerts/{alert_id}/ack"]["post"])) == {
        "400",
        "401",
        "404",
        "503",
    }
    assert set(_errors(open_["/api/v1/sensors/{sensor_id}/aggregates"]["get"])) == {
        "400",
        "404",
        "503",
    }
    assert set(_errors(open_["/api/v1/sensors/latest"]["get"])) == {"400", "503"}
    assert set(_errors(guarded["/api/v1/sensors/latest"]["get"])) == {"400", "401", "503"}
    assert set(_errors(guarded["/api/v1/alerts"]["get"])) == {"400", "401", "503"}
