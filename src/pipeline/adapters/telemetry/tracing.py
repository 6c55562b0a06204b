"""The OpenTelemetry adapter of the tracing port (opentelemetry-sdk, OTLP over HTTP).

Span names, as Jaeger lists them:

- `pipeline produce` — a record published by a producer outside any span (`pipeline
  produce`): one span per record of a sampled trace, whose context its headers carry;
- `pipeline process` — one batch of a consumer group, from its poll to its follow-up. It
  continues the trace of the batch's first record a producer sampled and links every other
  sampled record's context (up to `MAX_LINKS`); without one it starts a trace of its own,
  sampled at the configured ratio;
- `pipeline db write` — the transaction that makes a batch durable (each attempt);
- `pipeline alert publish` — alerts relayed from the outbox to the alerts topic, each
  alert's headers carrying the span's context;
- the API's request spans (`GET /api/v1/sensors/{sensor_id}`, …), from Litestar's
  OpenTelemetry plugin.

Only sampled traces travel: a record of an unsampled trace carries no header, so a worker
looks at the headers of the records that have some and at nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from operator import attrgetter
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from pipeline.adapters.telemetry.propagation import span_context_of
from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore, Committed
from pipeline.application.ports.records import Record, TopicPartition
from pipeline.application.ports.tracing import BatchTrace, WorkerTracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span, SpanContext, Tracer

    from pipeline.application.runtime.report import BatchReport

MAX_LINKS = 128
"""Links a batch's span keeps (OpenTelemetry's default span limit): the sampled records of
the batch after the first (its parent)."""
TRACER_NAME = "pipeline"
_headers_of = attrgetter("headers")


EXPORT_LOG_INTERVAL_S = 60.0
"""An unreachable collector is reported at most once in this many seconds."""


class QuietExportFailures(logging.Filter):
    """The OTLP exporter logs every retry of every batch (four lines per batch, a batch every
    five seconds, for as long as the collector is away): keep its errors only, at most one
    per `EXPORT_LOG_INTERVAL_S`. Spans are lost while it is away; records never are."""

    def __init__(self) -> None:
        super().__init__()
        self._last = -EXPORT_LOG_INTERVAL_S

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return False
        now = time.monotonic()
        if now - self._last < EXPORT_LOG_INTERVAL_S:
            return False
        self._last = now
        return True


def quiet_export_failures() -> None:
    """Install `QuietExportFailures` on the OTLP exporter's logger (once)."""
    exporter_log = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    if not any(isinstance(f, QuietExportFailures) for f in exporter_log.filters):
        exporter_log.addFilter(QuietExportFailures())


def tracer_provider(
    *, endpoint: str, sample_ratio: float, service_name: str, instance_id: str
) -> TracerProvider:
    """A provider exporting to the OTLP/HTTP collector at `endpoint` (its base URL) from a
    background thread, sampling `sample_ratio` of the traces this process starts and every
    trace a sampled parent continues."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    resource = Resource.create({"service.name": service_name, "service.instance.id": instance_id})
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(sample_ratio))
    )
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces", timeout=10)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    quiet_export_failures()
    return provider


class OtelTracing:
    """The process's tracing on an OpenTelemetry `TracerProvider`."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer(TRACER_NAME)

    def worker(self, *, job: str, group_id: str, topics: Sequence[str]) -> WorkerTracing:
        """The batch spans of consumer group `group_id` of `job`, reading `topics`."""
        return OtelWorkerTracing(self.tracer, job=job, group_id=group_id, topics=topics)

    def span(
        self, name: str, attributes: Mapping[str, str | int] | None = None
    ) -> AbstractContextManager[object]:
        """A span child of the current one (a root one, sampled at the ratio, outside any)."""
        return self.tracer.start_as_current_span(name, attributes=attributes)

    def close(self) -> None:
        """Export the spans still queued (a few seconds at most), then stop exporting."""
        self.provider.shutdown()


class OtelWorkerTracing:
    """One consumer group's batch spans."""

    def __init__(self, tracer: Tracer, *, job: str, group_id: str, topics: Sequence[str]) -> None:
        self._tracer = tracer
        self._attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": group_id,
            "messaging.destination.name": ",".join(topics),
            "pipeline.job": job,
        }

    def batch(self, records: Sequence[Record]) -> BatchTrace:
        """Start a batch's span (see the module doc)."""
        sampled: list[SpanContext] = []
        # Records without headers (most, at a low sampling ratio) are skipped in C
        # (`filter`, `map`): only those with some are looked at in Python.
        for headers in filter(None, map(_headers_of, records)):
            found = span_context_of(headers)
            if found is not None:
                sampled.append(found)
                if len(sampled) > MAX_LINKS:
                    break
        parent = (
            trace.set_span_in_context(trace.NonRecordingSpan(sampled[0])) if sampled else Context()
        )
        span = self._tracer.start_span(
            "pipeline process",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=[Link(found) for found in sampled[1:]],
        )
        if span.is_recording():
            span.set_attributes(self._attributes)
            span.set_attribute("messaging.batch.message_count", len(records))
        return OtelBatchTrace(span)


class OtelBatchTrace:
    """One batch's span."""

    def __init__(self, span: Span) -> None:
        self._span = span
        self._context = trace.set_span_in_context(span)
        self._ended = False

    @contextmanager
    def _current(self) -> Iterator[object]:
        token = otel_context.attach(self._context)
        try:
            yield self._span
        except BaseException as error:
            self._span.record_exception(error)
            self._span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            self._end()
            raise
        finally:
            otel_context.detach(token)

    def current(self) -> AbstractContextManager[object]:
        """This batch's span, current while the block runs."""
        return self._current()

    def end(self, report: BatchReport | None) -> None:
        """End the span with what the batch did (or as not made durable)."""
        if self._ended:
            return
        span = self._span
        if span.is_recording():
            if report is None:
                span.set_status(Status(StatusCode.ERROR, "not made durable; read again"))
            else:
                span.set_attributes(
                    {
                        "pipeline.records.dead_lettered": len(report.dead_lettered),
                        "pipeline.records.late": report.late,
                        "pipeline.records.skipped": report.skipped,
                        "pipeline.rows.written": sum(report.written.values()),
                        "pipeline.events": len(report.events),
                        "pipeline.partitions.fenced": len(report.fenced),
                    }
                )
        self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._span.end()


class TracedCheckpointStore:
    """A checkpoint store whose commits are spans, `pipeline db write` (children of the
    batch's span, current in the task that applies it)."""

    def __init__(self, store: CheckpointStore, tracer: Tracer, *, db_system: str) -> None:
        self._store = store
        self._tracer = tracer
        self._db_system = db_system

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """Commit `batch` in the inner store, within a span."""
        with self._tracer.start_as_current_span("pipeline db write", kind=SpanKind.CLIENT) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        "db.system.name": self._db_system,
                        "pipeline.rows": sum(len(w.rows) for w in batch.writes),
                        "pipeline.state_changes": len(batch.state),
                        "pipeline.dead_letters": len(batch.dead_letters),
                    }
                )
            committed = await self._store.commit(batch)
            if committed.fenced and span.is_recording():
                span.set_attribute("pipeline.partitions.fenced", len(committed.fenced))
            return committed

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The inner store's."""
        return await self._store.stored_offsets(group_id, partitions)

    async def load_state(
        self, group_id: str, parts: Sequence[int]
    ) -> Mapping[int, Mapping[str, Collection[tuple[bytes, bytes]]]]:
        """The inner store's."""
        return await self._store.load_state(group_id, parts)

    async def ping(self) -> None:
        """The inner store's."""
        await self._store.ping()

    async def close(self) -> None:
        """The inner store's."""
        await self._store.close()
