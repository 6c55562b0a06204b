"""Traces through the event log: a producer's record carries its W3C trace context in its
headers, the worker's batch span continues it (and links every traced record), the database
write is its child; sampling off records nothing, tracing off looks at no record."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.telemetry import tracing as tracing_adapter
from pipeline.adapters.telemetry.propagation import (
    TracingEventLog,
    span_context_of,
    with_trace_context,
)
from pipeline.adapters.telemetry.tracing import OtelTracing, TracedCheckpointStore
from pipeline.application.ports import EventLog, Record
from pipeline.application.runtime.runner import JobRun, run_job
from pipeline.application.runtime.stats import WorkerStats
from pipeline.application.tracing import NULL_WORKER_TRACING
from pipeline.entrypoints.logging import configure_logging
from tests.unit.runtime.jobs import Tick, TickCodec
from tests.unit.runtime.test_job_runtime import (
    TOPIC,
    Sinks,
    at,
    clock,
    eventful,
    job_run,
    log,
    read_all,
    store_for,
)

__all__ = ["clock", "log"]  # fixtures


class Traced:
    """A tracing adapter whose spans are kept in memory (sampled at `ratio`)."""

    def __init__(self, ratio: float = 1.0) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = OtelTracing(provider)

    def spans(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def run(self, run: JobRun) -> JobRun:
        """`run` traced: its batches' spans, its commits' spans."""
        store = TracedCheckpointStore(run.store, self.tracing.tracer, db_system="memory")
        return dataclasses.replace(run, tracing=self.tracing, store=store)


async def produce(log: EventLog, *ticks: Tick) -> None:
    codec = TickCodec()
    for tick in ticks:
        await log.publish(TOPIC, tick.key.encode(), await codec.encode(tick))
    await log.flush()


def header(record: Record, name: str) -> bytes | None:
    return next((v for k, v in record.headers if k == name), None)


async def test_a_produced_record_carries_the_context_of_its_produce_span(
    log: InMemoryEventLog,
) -> None:
    producer = Traced(ratio=1.0)

    await produce(TracingEventLog(log, producer.tracing.tracer), Tick("a", at(1), 1))

    [record] = await read_all(log, TOPIC)
    [span] = producer.spans("pipeline produce")
    assert span.kind is trace.SpanKind.PRODUCER
    assert span.attributes is not None
    assert span.attributes["messaging.destination.name"] == TOPIC
    carried = span_context_of(record.headers)
    assert carried is not None
    assert span.context is not None
    assert (carried.trace_id, carried.span_id) == (span.context.trace_id, span.context.span_id)


async def test_a_batch_continues_the_first_traced_records_trace_and_links_them_all(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    traced = Traced(ratio=1.0)
    producing = TracingEventLog(log, traced.tracing.tracer)
    await produce(log, Tick("a", at(0), 0))  # not traced: no header
    await produce(producing, Tick("a", at(1), 1), Tick("a", at(2), 2), Tick("b", at(3), 3))
    sinks = Sinks()

    run = traced.run(job_run(log, store_for(sinks), clock))
    await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    produced = {s.context.span_id: s for s in traced.spans("pipeline produce") if s.context}
    assert len(produced) == 3
    processed = [s for s in traced.spans("pipeline process") if s.parent is not None]
    assert processed
    parents = {s.parent.span_id for s in processed if s.parent is not None}
    linked = {link.context.span_id for s in processed for link in s.links}
    # Each batch is a child of its first traced record's produce span and links the others.
    assert parents | linked == set(produced)
    assert not parents & linked
    for batch in processed:
        assert batch.kind is trace.SpanKind.CONSUMER
        assert batch.parent is not None
        assert batch.context is not None
        first = produced[batch.parent.span_id]
        assert first.context is not None
        assert batch.context.trace_id == first.context.trace_id
    writes = traced.spans("pipeline db write")
    batch_ids = {s.context.span_id for s in processed if s.context}
    assert any(w.parent is not None and w.parent.span_id in batch_ids for w in writes)
    assert sinks.ticks.rows  # and the job did its work


async def test_what_a_batch_hands_on_is_a_child_of_that_batch_even_when_handed_behind_another(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    traced = Traced(ratio=1.0)
    producing = TracingEventLog(log, traced.tracing.tracer)
    await produce(producing, *(Tick("a", at(i), i) for i in range(150)))  # batches: 100, 50
    stats = WorkerStats()

    async def on_events(events: Sequence[object]) -> None:
        # The first batch's call lasts until the second batch was handed on behind it.
        while events and stats.batches < 2:
            await asyncio.sleep(0.01)
        if events:
            with traced.tracing.span("pipeline alert publish", {"pipeline.alerts": len(events)}):
                pass

    run = traced.run(job_run(log, eventful(Sinks()), clock))
    await asyncio.wait_for(run_job(run, until_caught_up=True, stats=stats, on_events=on_events), 5)

    batches = {s.context.span_id: s for s in traced.spans("pipeline process") if s.context}
    published = traced.spans("pipeline alert publish")
    assert stats.batches == len(batches) == len(published) == 2
    parents = [s.parent.span_id for s in published if s.parent is not None]
    assert sorted(parents) == sorted(batches)  # one each, not both under the first batch
    sizes = {
        s.parent.span_id: dict(s.attributes or {})["pipeline.alerts"] for s in published if s.parent
    }
    for span_id, batch in batches.items():
        assert batch.attributes is not None
        assert sizes[span_id] == batch.attributes["messaging.batch.message_count"]


async def test_a_record_published_inside_a_span_carries_that_span(
    log: InMemoryEventLog,
) -> None:
    traced = Traced(ratio=1.0)

    with traced.tracing.span("pipeline alert publish", {"pipeline.alerts": 1}):
        await produce(TracingEventLog(log, traced.tracing.tracer), Tick("a", at(1), 1))

    [record] = await read_all(log, TOPIC)
    [span] = traced.spans("pipeline alert publish")
    carried = span_context_of(record.headers)
    assert carried is not None
    assert span.context is not None
    assert carried.span_id == span.context.span_id
    assert traced.spans("pipeline produce") == []  # no span of its own inside another


async def test_sampling_off_records_no_span_and_sends_no_header(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    traced = Traced(ratio=0.0)
    await produce(TracingEventLog(log, traced.tracing.tracer), Tick("a", at(1), 1))

    run = traced.run(job_run(log, store_for(Sinks()), clock))
    await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    assert traced.exporter.get_finished_spans() == ()
    [record] = await read_all(log, TOPIC)
    assert header(record, "traceparent") is None


class Untouchable(Sequence[Record]):
    """Records that fail the test when anything looks at them."""

    def __len__(self) -> int:
        raise AssertionError("tracing off looked at the batch")

    def __getitem__(self, index: Any) -> NoReturn:
        raise AssertionError("tracing off looked at a record")

    def __iter__(self) -> Iterator[Record]:
        raise AssertionError("tracing off iterated the records")


def test_tracing_off_looks_at_no_record() -> None:
    batch = NULL_WORKER_TRACING.batch(Untouchable())

    with batch.current():
        pass
    batch.end(None)


@pytest.mark.parametrize(
    "value",
    [b"garbage", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01", b"\xff\xfe", b""],
    ids=["not-w3c", "all-zero-ids", "not-ascii", "empty"],
)
async def test_a_record_with_a_bad_traceparent_is_processed_in_a_trace_of_its_own(
    log: InMemoryEventLog, clock: ManualClock, value: bytes
) -> None:
    traced = Traced(ratio=1.0)
    codec = TickCodec()
    await log.publish(
        TOPIC, b"a", await codec.encode(Tick("a", at(1), 1)), [("traceparent", value)]
    )
    sinks = Sinks()

    run = traced.run(job_run(log, store_for(sinks), clock))
    await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    [batch] = [s for s in traced.spans("pipeline process") if s.attributes]
    assert batch.parent is None
    assert batch.links == ()
    assert len(sinks.ticks.rows) == 1


def test_trace_context_replaces_the_one_a_record_had() -> None:
    traced = Traced(ratio=1.0)
    with traced.tracing.span("first") as first:
        assert isinstance(first, trace.Span)
        headers = with_trace_context([("label", b"x")], first.get_span_context())
    with traced.tracing.span("second") as second:
        assert isinstance(second, trace.Span)
        headers = with_trace_context(headers, second.get_span_context())

    assert [k for k, _ in headers] == ["label", "traceparent"]
    carried = span_context_of(headers)
    assert carried is not None
    assert carried.span_id == second.get_span_context().span_id


def test_a_json_log_line_inside_a_sampled_span_carries_its_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    traced = Traced(ratio=1.0)
    configure_logging("INFO", "json")
    logger = structlog.get_logger("test")
    try:
        logger.info("outside")
        with traced.tracing.span("pipeline process") as span:
            assert isinstance(span, trace.Span)
            logger.info("inside", topic=TOPIC)
        with Traced(ratio=0.0).tracing.span("unsampled"):
            logger.info("unsampled")
    finally:
        structlog.reset_defaults()  # not left writing to this test's captured stderr

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    by_event = {line["event"]: line for line in lines}
    context = span.get_span_context()
    assert by_event["inside"]["trace_id"] == f"{context.trace_id:032x}"
    assert by_event["inside"]["span_id"] == f"{context.span_id:016x}"
    assert by_event["inside"]["topic"] == TOPIC
    assert "trace_id" not in by_event["outside"]
    assert "trace_id" not in by_event["unsampled"]


def test_an_unreachable_collector_is_one_error_line_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("pipeline.adapters.telemetry.tracing.time.monotonic", lambda: clock[0])
    quiet = tracing_adapter.QuietExportFailures()

    def line(level: int) -> logging.LogRecord:
        return logging.LogRecord("otlp", level, __file__, 1, "export failed", None, None)

    passed = []
    for second in range(0, 130, 5):  # a batch every 5 s: retries warned, then the failure
        clock[0] = 1000.0 + second
        passed += [quiet.filter(line(logging.WARNING)) for _ in range(4)]
        passed.append(quiet.filter(line(logging.ERROR)))

    assert passed.count(True) == 3  # at 0 s, 60 s and 120 s
