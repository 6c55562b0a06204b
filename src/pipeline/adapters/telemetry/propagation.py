"""W3C trace context in Kafka record headers (`traceparent`, and `tracestate` when a trace
has one), and the event log that puts it there.

Headers are read with OpenTelemetry's W3C propagator: a header that is not a valid
`traceparent` (garbled, or of a version it cannot read) is ignored, the record is handled as
one without a trace, and nothing is logged for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pipeline.application.errors import PublishError
from pipeline.application.ports.event_log import EventConsumer, EventLog, OffsetResolver
from pipeline.application.ports.records import OutgoingRecord, TopicPartition, TopicSpec

_PROPAGATOR = TraceContextTextMapPropagator()
FIELDS = frozenset(_PROPAGATOR.fields)
"""The headers the trace context takes: `traceparent`, `tracestate`."""


def span_context_of(headers: Sequence[tuple[str, bytes]]) -> SpanContext | None:
    """The sampled span context a record's headers carry, or None."""
    carrier: dict[str, str] | None = None
    for key, value in headers:
        if key in FIELDS:
            if carrier is None:
                carrier = {}
            carrier[key] = value.decode("latin-1")
    if carrier is None:
        return None
    found = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return found if found.is_valid and found.trace_flags.sampled else None


def with_trace_context(
    headers: Sequence[tuple[str, bytes]], span_context: SpanContext
) -> tuple[tuple[str, bytes], ...]:
    """`headers` carrying `span_context` (a trace context they had is replaced)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
    kept = tuple((k, v) for k, v in headers if k not in FIELDS)
    return (*kept, *((k, v.encode("latin-1")) for k, v in carrier.items()))


def _sampled_current() -> SpanContext | None:
    found = trace.get_current_span().get_span_context()
    return found if found.is_valid and found.trace_flags.sampled else None


class TracingEventLog:
    """An event log whose records carry the trace they were published in.

    Inside a span (a worker's batch, the alert relay's publication) a record carries that
    span's context when its trace is sampled. Outside any (a producer), each record is a
    trace of its own: a `pipeline produce` span, sampled at the provider's ratio, whose
    context the record carries when sampled (a record of an unsampled trace gets no header).
    Everything else is the inner log's."""

    def __init__(self, log: EventLog, tracer: Tracer) -> None:
        self._log = log
        self._tracer = tracer

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
    ) -> None:
        """Publish through the inner log, with the trace context (see the class doc)."""
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            if current.trace_flags.sampled:
                headers = with_trace_context(headers, current)
            await self._log.publish(topic, key, value, headers, timestamp_ms)
            return
        span = self._tracer.start_span(
            "pipeline produce", context=Context(), kind=SpanKind.PRODUCER
        )
        if not span.is_recording():
            await self._log.publish(topic, key, value, headers, timestamp_ms)
            return
        try:
            span.set_attributes({"messaging.system": "kafka", "messaging.destination.name": topic})
            headers = with_trace_context(headers, span.get_span_context())
            await self._log.publish(topic, key, value, headers, timestamp_ms)
        except BaseException as error:
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
            raise
        finally:
            span.end()

    async def deliver(
        self, records: Sequence[OutgoingRecord], timeout: float = 30.0
    ) -> list[PublishError | None]:
        """Deliver through the inner log, each record carrying the current sampled span."""
        current = _sampled_current()
        if current is not None:
            records = [
                OutgoingRecord(
                    topic=r.topic,
                    key=r.key,
                    value=r.value,
                    headers=with_trace_context(r.headers, current),
                    timestamp_ms=r.timestamp_ms,
                )
                for r in records
            ]
        return await self._log.deliver(records, timeout)

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """The inner log's."""
        await self._log.ensure_topics(specs)

    async def delete_topics(self, names: Sequence[str]) -> None:
        """The inner log's."""
        await self._log.delete_topics(names)

    async def flush(self, timeout: float = 30.0) -> None:
        """The inner log's."""
        await self._log.flush(timeout)

    def consumer(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        resolve_offsets: OffsetResolver | None = None,
        co_partitioned: bool = False,
        interleaved: bool = False,
    ) -> EventConsumer:
        """The inner log's."""
        return self._log.consumer(
            group_id=group_id,
            topics=topics,
            resolve_offsets=resolve_offsets,
            co_partitioned=co_partitioned,
            interleaved=interleaved,
        )

    def reader(self, *, group_id: str, start: Mapping[TopicPartition, int]) -> EventConsumer:
        """The inner log's."""
        return self._log.reader(group_id=group_id, start=start)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The inner log's."""
        return await self._log.end_offsets(topic)

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """The inner log's."""
        return await self._log.offsets_for_time(topic, timestamp_ms)

    async def close(self) -> None:
        """Nothing: the inner log belongs to whoever made it (the composition root)."""
