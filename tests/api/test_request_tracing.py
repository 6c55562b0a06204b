"""With tracing on, every HTTP request is a server span named by its route template, which
continues the caller's W3C trace context; with tracing off the app has no tracing plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry import trace

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import ApiSettings, Settings
from tests.unit.runtime.test_job_tracing import Traced

CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7


@pytest.fixture
def traced() -> Traced:
    return Traced(ratio=1.0)


@pytest.fixture
async def client(
    traced: Traced, store: InMemorySensorStore, clock: ManualClock
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    pipeline = await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=store,
        clock=clock,
        tracing=traced.tracing,
    )
    try:
        async with AsyncTestClient(create_app(pipeline, ApiSettings())) as client:
            yield client
    finally:
        await pipeline.aclose()


async def test_a_request_is_a_span_named_by_its_route_continuing_the_callers_trace(
    client: AsyncTestClient[Litestar], traced: Traced
) -> None:
    caller = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"

    response = await client.get(
        "/api/v1/sensors/temp-0001/aggregates", headers={"traceparent": caller}
    )

    assert response.status_code == 404  # no such sensor: answered, and traced, all the same
    [span] = [s for s in traced.exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
    assert span.name == "GET /api/v1/sensors/{sensor_id}/aggregates"
    assert span.context is not None
    assert span.parent is not None
    assert (span.context.trace_id, span.parent.span_id) == (CALLER_TRACE, CALLER_SPAN)


async def test_a_url_no_route_matches_is_a_span_named_by_its_method_alone(
    client: AsyncTestClient[Litestar], traced: Traced
) -> None:
    response = await client.get("/no/such/page/4711")

    assert response.status_code == 404
    [span] = [s for s in traced.exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
    assert span.name == "GET"


async def test_tracing_off_adds_no_tracing_plugin(
    store: InMemorySensorStore, clock: ManualClock
) -> None:
    pipeline = await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=store,
        clock=clock,
    )
    try:
        app = create_app(pipeline, ApiSettings())
        with pytest.raises(KeyError):
            app.plugins.get("OpenTelemetryPlugin")
    finally:
        await pipeline.aclose()
