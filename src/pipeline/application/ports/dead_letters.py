"""Records that could not be processed, and where they are kept for inspection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from pipeline.application.ports.records import TopicPartition


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A record that could not be processed, kept as it was read, with why it failed.

    It goes to the dead-letter topic `<topic>.dlq` and to the store (table `dead_letters`);
    its natural key is where it was read: (topic, partition, offset)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    """The original record's timestamp, milliseconds since the epoch."""
    error_class: str
    """The stable name of the failure, e.g. `bad_magic_byte`, `reading_out_of_range`."""
    message: str
    stack_trace: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    worker_id: str
    group_id: str
    headers: tuple[tuple[str, bytes], ...] = ()
    """The original record's headers (kept on the dead-letter topic, not in the store)."""

    @property
    def source(self) -> TopicPartition:
        """Where the record was read."""
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetterFilter:
    """Which stored dead letters a query wants; None means any. Ranges are [from, to)."""

    topic: str | None = None
    partition: int | None = None
    error_class: str | None = None
    since: datetime | None = None
    """Last failure at or after."""
    until: datetime | None = None
    """Last failure before."""
    from_offset: int | None = None
    to_offset: int | None = None


@runtime_checkable
class DeadLetterStore(Protocol):
    """The dead letters stored with the batches that rejected them, for inspection."""

    async def find_dead_letters(
        self, query: DeadLetterFilter, *, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters matching `query`, by topic, partition and offset."""
        ...

    async def dead_letter(self, topic: str, partition: int, offset: int) -> DeadLetter | None:
        """The dead letter of the record at (topic, partition, offset), if there is one."""
        ...

    async def purge_dead_letters(self, query: DeadLetterFilter) -> int:
        """Delete the dead letters matching `query`; return how many were deleted."""
        ...
