"""Tracing off: the null objects every component uses unless the composition root gives it
a real `Tracing` (see `pipeline.application.ports.tracing`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

from pipeline.application.ports.records import Record
from pipeline.application.ports.tracing import BatchTrace, WorkerTracing
from pipeline.application.runtime.report import BatchReport

_NOTHING: AbstractContextManager[object] = nullcontext()
"""Reusable: entering it does nothing."""


class NullBatchTrace:
    """A batch without a span."""

    def current(self) -> AbstractContextManager[object]:
        """A block that changes nothing."""
        return _NOTHING

    def end(self, report: BatchReport | None) -> None:
        """Nothing recorded."""


NULL_BATCH_TRACE = NullBatchTrace()


class NullWorkerTracing:
    """A consumer group's tracing that records nothing."""

    def batch(self, records: Sequence[Record]) -> BatchTrace:
        """The null batch trace: the records are not looked at."""
        return NULL_BATCH_TRACE


NULL_WORKER_TRACING = NullWorkerTracing()


class NullTracing:
    """Tracing off."""

    def worker(self, *, job: str, group_id: str, topics: Sequence[str]) -> WorkerTracing:
        """The null worker tracing."""
        return NULL_WORKER_TRACING

    def span(
        self, name: str, attributes: Mapping[str, str | int] | None = None
    ) -> AbstractContextManager[object]:
        """A block that changes nothing."""
        return _NOTHING

    def close(self) -> None:
        """Nothing to close."""
