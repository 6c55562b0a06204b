"""Schemathesis against the app's own OpenAPI document, with all its checks: whatever a
client sends, valid per the document or deliberately not, the answer is never a server error,
its status code, content type, headers and body are the ones the document gives for it, a
request the document allows is accepted, one it forbids is refused, and an operation that
needs the API key refuses a request without it.

The store holds readings and alerts, so the queries run over data, and requests carry a valid
API key, so acknowledgement reaches the store (401s are covered by test_alerts_api)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from litestar import Litestar
from schemathesis import GenerationMode

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import ApiSettings, Settings
from tests.api.conftest import API_KEY, API_KEY_HASH, reading, store_readings

EXAMPLES_PER_OPERATION = 60
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _filled_app() -> Litestar:
    store = InMemorySensorStore()
    readings = [
        reading(NOW - timedelta(seconds=7 * i), sensor=f"temp-{i % 5}", value=20.0 + i % 60)
        for i in range(200)
    ]
    pipeline = asyncio.run(
        bootstrap(
            Settings(),
            log=InMemoryEventLog(),
            registry=InMemorySchemaRegistry(),
            store=store,
            clock=ManualClock(NOW),
        )
    )
    alerts = asyncio.run(store_readings(store, readings))
    assert alerts, "the fuzzed store should hold alerts"
    return create_app(pipeline, ApiSettings(api_key_hashes=[API_KEY_HASH]))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_the_one_the_openapi_document_gives(mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", _filled_app())
    statuses: dict[str, set[int]] = {}

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers={"X-API-Key": API_KEY})
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            call()
        except Unsatisfiable:
            # An operation without parameters has no invalid request to generate.
            assert mode is GenerationMode.NEGATIVE

    assert len(statuses) >= 6, statuses
    if mode is GenerationMode.NEGATIVE:
        assert any(400 in codes for codes in statuses.values()), statuses
