"""Declared table sinks in memory: the rows of each declared table kept by primary key, as
the PostgreSQL and SQLite writers of `adapters.sql.table_sinks` keep them.

`DeclaredRows` holds each table's rows (the domain objects the job emitted) by key; in-memory
query adapters read them from there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pipeline.adapters.memory.checkpoint import MemorySink, Undo
from pipeline.adapters.sql.table_sinks import OnConflict, TableSink
from pipeline.application.ports.checkpoint import SinkResult
from pipeline.application.ports.records import Record

T = TypeVar("T")

DeclaredRows = dict[str, dict[tuple[Any, ...], Any]]
"""Per table name: the stored rows by primary key."""


class MemoryTableSink(Generic[T]):
    """Stores a declared sink's rows in `rows[table name]`, by primary key."""

    def __init__(self, spec: TableSink[T], rows: DeclaredRows) -> None:
        self._spec = spec
        self._rows: dict[tuple[Any, ...], T] = rows.setdefault(spec.table.name, {})

    def write(self, rows: Sequence[T], origins: Sequence[Record | None], undo: Undo) -> SinkResult:
        """Insert (or replace, per the declaration) each row; `written` counts the rows
        inserted or changed."""
        spec, stored = self._spec, self._rows
        positions = spec.key_positions
        replace = spec.on_conflict is OnConflict.REPLACE
        grows = None if spec.grows is None else spec.columns.index(spec.grows)
        # One row per key, as one SQL statement takes them: the first of a key when
        # duplicates are ignored, the last when they replace.
        batch: dict[tuple[Any, ...], tuple[T, tuple[Any, ...]]] = {}
        for row in rows:
            values = spec.values(row)
            key = tuple(values[i] for i in positions)
            if replace or key not in batch:
                batch[key] = (row, values)
        before: list[tuple[tuple[Any, ...], T | None]] = []
        for key, (row, values) in batch.items():
            previous = stored.get(key)
            if previous is not None:
                if not replace:
                    continue
                old = spec.values(previous)
                if old == values or (grows is not None and old[grows] > values[grows]):
                    continue
            stored[key] = row
            before.append((key, previous))

        def take_back() -> None:
            for key, previous in reversed(before):
                if previous is None:
                    del stored[key]
                else:
                    stored[key] = previous

        undo.append(take_back)
        return SinkResult(written=len(before))


def memory_table_sinks(
    declared: dict[str, TableSink[Any]], rows: DeclaredRows
) -> dict[str, MemorySink]:
    """The in-memory writers of the declared sinks, by sink name, storing into `rows`."""
    return {name: MemoryTableSink(spec, rows) for name, spec in declared.items()}
