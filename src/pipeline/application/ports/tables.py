"""Tables materialized from compacted topics (changelogs): the latest value of every key.

A stream–table join looks up the table's current value for each stream record; operators
change the table (e.g. a PostgreSQL reference table streamed by Kafka Connect) and the join
sees the change within seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

K = TypeVar("K")
V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)

KeyDecoder = Callable[[bytes], K]
"""Turns a record key into the table's key; raises to reject the record."""
ValueDecoder = Callable[[bytes], V | None]
"""Turns a record value into the table's value, None meaning "deleted" (as a tombstone
does); raises to reject the record."""


@dataclass(frozen=True, slots=True)
class TableCodec(Generic[K, V]):
    """How the records of a changelog topic become a table's keys and rows: what a job's
    global table is read with (`Job.global_table`)."""

    decode_key: KeyDecoder[K]
    decode_value: ValueDecoder[V]


@runtime_checkable
class ChangelogTable(Protocol[K, V_co]):
    """A table materialized from a changelog topic.

    `start` reads the topic from its beginning up to its end as it was at the call, so the
    table is complete when `start` returns; the table then follows the topic in the
    background until `close`. A record with a value replaces its key's value, a tombstone (no
    value, or one the decoder maps to None) removes the key, a record without a key or that
    the decoders reject changes nothing and is counted in `rejected`.
    """

    async def start(self) -> None:
        """Read the topic up to its current end, then keep following it."""
        ...

    def get(self, key: K) -> V_co | None:
        """The key's latest value, None when absent or deleted."""
        ...

    def snapshot(self) -> Mapping[K, V_co]:
        """Every key's latest value, as of now (a copy)."""
        ...

    @property
    def rejected(self) -> int:
        """Records that changed nothing because they had no key or could not be decoded."""
        ...

    async def close(self) -> None:
        """Stop following the topic and release its consumer."""
        ...


@runtime_checkable
class ChangelogTables(Protocol):
    """Where changelog tables come from (the event log they are read from)."""

    def changelog_table(
        self,
        topic: str,
        *,
        decode_key: KeyDecoder[K],
        decode_value: ValueDecoder[V],
    ) -> ChangelogTable[K, V]:
        """A table over `topic`; call its `start` before use."""
        ...
