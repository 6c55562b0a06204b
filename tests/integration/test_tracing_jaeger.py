"""End to end into the stack's Jaeger: readings produced with tracing on, the sensors worker
run over them, and the whole trace read back through Jaeger's query API — the producer's
`pipeline produce` span, the worker's `pipeline process` span continuing it, the
`pipeline db write` and `pipeline alert publish` spans under that; and the alerts published
carrying the alert span's context in their headers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.telemetry.propagation import span_context_of
from pipeline.application.ports import Record, TopicPartition
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings, TracingSettings
from pipeline.entrypoints.worker import run_named_job
from tests.services import require_service, wait_until_answering

# On a fresh machine `scripts/stack up` starts Jaeger once its build is over (minutes): this
# test runs after the others (`late`) and waits for it, with a timeout to match.
JAEGER_WAIT_S = 900
pytestmark = [pytest.mark.integration, pytest.mark.late, pytest.mark.timeout(JAEGER_WAIT_S + 300)]

READINGS = 300


def by_name(trace: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    spans: dict[str, list[Mapping[str, Any]]] = {}
    for span in trace["spans"]:
        spans.setdefault(span["operationName"], []).append(span)
    return spans


def parent_of(span: Mapping[str, Any]) -> str | None:
    return next(
        (r["spanID"] for r in span.get("references", ()) if r["refType"] == "CHILD_OF"), None
    )


async def traces_of(jaeger: str, service: str) -> list[Mapping[str, Any]]:
    async with httpx.AsyncClient(base_url=jaeger, timeout=10) as client:
        response = await client.get(
            "/api/traces", params={"service": service, "limit": 1000, "lookback": "1h"}
        )
        response.raise_for_status()
        found: list[Mapping[str, Any]] = response.json()["data"] or []
        return found


async def a_whole_trace(jaeger: str, service: str) -> Mapping[str, Any]:
    """The first trace holding a batch's span with an alert publication under it (spans
    reach Jaeger in batches: asked again for a while)."""
    found: Sequence[Mapping[str, Any]] = []
    for _ in range(60):
        found = await traces_of(jaeger, service)
        for trace in found:
            names = by_name(trace)
            if "pipeline alert publish" in names and "pipeline produce" in names:
                return trace
        await asyncio.sleep(0.5)
    raise AssertionError(f"no whole trace in Jaeger; traces found: {[by_name(t) for t in found]}")


async def read_all(pipeline: Any, topic: str) -> list[Record]:
    ends = await pipeline.log.end_offsets(topic)
    start = {TopicPartition(topic, p): 0 for p in ends}
    reader = pipeline.log.reader(group_id=f"check-{uuid.uuid4().hex[:8]}", start=start)
    records: list[Record] = []
    async with asyncio.timeout(60):
        while len(records) < sum(ends.values()):
            records += await reader.poll(1000, 0.5)
    await reader.close()
    return records


async def test_a_produced_reading_is_followed_through_the_worker_into_jaeger(
    settings: Settings,
) -> None:
    jaeger = require_service("PIPELINE_STACK_JAEGER_URL")
    wait_until_answering(f"{jaeger}/api/services", what="Jaeger", timeout=JAEGER_WAIT_S)
    service = f"pipeline-test-{uuid.uuid4().hex[:10]}"
    traced = settings.model_copy(
        update={
            "tracing": TracingSettings(
                endpoint=require_service("PIPELINE_STACK_JAEGER_OTLP_URL"),
                sample_ratio=1.0,
                service_name=service,
            )
        }
    )
    now = datetime.now(UTC).replace(microsecond=0)
    pipeline = await bootstrap(traced, clock=ManualClock(now))
    try:
        # Half the readings anomalous: the batch raises alerts, which the relay publishes.
        sent = await produce_sensors(
            pipeline, count=READINGS, rate=0, seed=11, sensors=20, anomaly_rate=0.5
        )
        assert sent == READINGS
        await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 120)
        alerts = await read_all(pipeline, traced.topics.system_alerts)
    finally:
        await pipeline.aclose()  # exports the spans still queued

    trace = await a_whole_trace(jaeger, service)
    spans = by_name(trace)
    [batch] = spans["pipeline process"]
    produced = {s["spanID"]: s for s in spans["pipeline produce"]}
    assert parent_of(batch) in produced  # the batch continues its first record's trace
    assert {parent_of(s) for s in spans["pipeline db write"]} == {batch["spanID"]}
    [publish] = spans["pipeline alert publish"]
    assert parent_of(publish) == batch["spanID"]
    tags = {t["key"]: t["value"] for t in batch["tags"]}
    assert tags["pipeline.job"] == "sensors"
    assert traced.topics.sensor_readings in tags["messaging.destination.name"].split(",")
    # The batch's other records (all traced here) are linked: FOLLOWS_FROM, other traces.
    links = [r for r in batch["references"] if r["refType"] == "FOLLOWS_FROM"]
    assert len(links) == min(int(tags["messaging.batch.message_count"]) - 1, 128)
    assert all(link["traceID"] != trace["traceID"] for link in links)
    # An alert on the topic carries the publication's context: a consumer continues it.
    carried = [span_context_of(a.headers) for a in alerts]
    assert alerts
    assert None not in carried
    assert publish["spanID"] in {f"{c.span_id:016x}" for c in carried if c is not None}
