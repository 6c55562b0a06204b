"""Tracing: the spans the runtime and the alert outbox open, carried across Kafka.

A worker opens one span per batch, never one per record: `WorkerTracing.batch` is handed
the batch's records, continues the trace of the first one a producer sampled and links the
others (their W3C trace context travels in the records' headers). The batch's span is made
current while the batch is prepared, made durable and followed up (`BatchTrace.current`),
so spans opened meanwhile (the database write, the alert publication) are its children and
log lines written meanwhile carry its ids. The null objects in `pipeline.application.tracing`
are the default: tracing off costs a few method calls per batch and nothing per record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from pipeline.application.ports.records import Record

if TYPE_CHECKING:
    from pipeline.application.runtime.report import BatchReport


class BatchTrace(Protocol):
    """The span of one batch, from its poll to its follow-up (alerts relayed)."""

    def current(self) -> AbstractContextManager[object]:
        """While the block runs, this batch's span is the current one (tasks created in the
        block inherit it). An error escaping the block ends the span as failed."""
        ...

    def end(self, report: BatchReport | None) -> None:
        """The batch is over: durable as `report` says, or, with None, not made durable (it
        will be read again). Ending twice ends once."""
        ...


class WorkerTracing(Protocol):
    """The spans of one consumer group of a job."""

    def batch(self, records: Sequence[Record]) -> BatchTrace:
        """Start the span of a batch of `records`, just read."""
        ...


class Tracing(Protocol):
    """The process's tracing."""

    def worker(self, *, job: str, group_id: str, topics: Sequence[str]) -> WorkerTracing:
        """Where consumer group `group_id` of `job`, reading `topics`, opens its batches'
        spans."""
        ...

    def span(
        self, name: str, attributes: Mapping[str, str | int] | None = None
    ) -> AbstractContextManager[object]:
        """A span named `name`, child of the current one, current while the block runs."""
        ...

    def close(self) -> None:
        """Export the spans still queued, then stop (the process is ending)."""
        ...
