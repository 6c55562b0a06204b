"""How a worker retries a batch failing transiently: backoff, budget, and what a handler
offers to divert a batch that keeps failing while its dependency answers."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pipeline.application.errors import TransientError
from pipeline.application.ports.records import Record
from pipeline.application.runtime.report import BatchReport

NotBefore = Callable[[Sequence[Record]], float | None]
"""Given a polled batch, the epoch seconds before which it must not be handled (or None)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransientFailure:
    """A batch whose in-place budget ran out while its dependency answers again."""

    error: TransientError
    attempts: int
    """Attempts made in place (the first included)."""
    first_failed_at: datetime
    last_failed_at: datetime


class Diverter(Protocol):
    """What a handler offers so a batch that keeps failing transiently is moved aside (to a
    retry topic or the dead-letter topic) instead of blocking its partitions."""

    async def healthy(self) -> bool:
        """Whether the handler's dependency answers now (a database outage says False)."""
        ...

    async def divert(self, records: Sequence[Record], failure: TransientFailure) -> BatchReport:
        """Move `records` aside, acknowledged by the broker, then store their offsets."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient failures of a batch."""

    initial: float = 0.2
    maximum: float = 10.0
    attempts: int | None = None
    """The in-place budget: after this many attempts a batch is diverted when the worker
    has a Diverter and the dependency is healthy, else re-raised (poll and prepare are
    re-raised); None retries until stopped."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        ceiling = min(self.maximum, self.initial * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)
