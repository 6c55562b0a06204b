"""Declared table sinks: a job's rows stored in their table by its primary key, on
PostgreSQL and SQLite (and in memory: `adapters.memory.table_sinks`), from one declaration.

A domain declares, next to its SQLAlchemy table, which columns a row fills and how:

    FLAGGED = TableSink(
        tables.flagged_transactions,
        columns=("transaction_id", "account_id", "amount", "reasons", "time"),
        values=lambda f: (f.transaction_id, f.account_id, f.amount, list(f.reasons), f.time),
    )

and registers it by sink name in `declared.DECLARED_SINKS`. The writers are set-based, one
statement per batch and table: on PostgreSQL the rows are COPYed into a session-private stage
and inserted with one INSERT … SELECT … ON CONFLICT; on SQLite one executemany. Both run inside
the checkpoint store's transaction, so the rows commit with the batch's offsets and state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pipeline.adapters.sql.postgres_stage import Stage
from pipeline.application.ports.checkpoint import SinkResult
from pipeline.application.ports.records import Record

T = TypeVar("T")

_POSTGRES = postgresql.dialect()  # type: ignore[no-untyped-call]
_quote = _POSTGRES.identifier_preparer.quote


class OnConflict(StrEnum):
    """What a row does to the stored row with the same primary key."""

    IGNORE = "ignore"
    """The stored row stays: facts written once (an event, a flagged transaction)."""
    REPLACE = "replace"
    """The new row replaces it: results that are updated (a window emitting updates)."""


@dataclass(frozen=True, slots=True)
class TableSink(Generic[T]):
    """How rows of type T are stored in `table`, keyed by its primary key."""

    table: sa.Table
    columns: tuple[str, ...]
    """The columns a row fills, in the order `values` gives them; they include the primary
    key. Columns left out keep their server default (e.g. `updated_at`)."""
    values: Callable[[T], tuple[Any, ...]]
    on_conflict: OnConflict = OnConflict.IGNORE
    grows: str | None = None
    """With REPLACE: a column whose value only grows (a window's count). A row with a smaller
    value than the stored one is a partial view (a replay catching up from inside the window)
    and never replaces it."""
    key: tuple[str, ...] = field(init=False)
    key_positions: tuple[int, ...] = field(init=False)
    json_positions: tuple[int, ...] = field(init=False)
    """Positions of JSON columns: their values are encoded to text for PostgreSQL's COPY."""

    def __post_init__(self) -> None:
        known = set(self.table.columns.keys())
        unknown = [c for c in self.columns if c not in known]
        if unknown:
            raise ValueError(f"table {self.table.name} has no column {', '.join(unknown)}")
        key = tuple(c.name for c in self.table.primary_key.columns)
        if not key or any(c not in self.columns for c in key):
            raise ValueError(
                f"the columns of a sink into {self.table.name} must include its primary key "
                f"({', '.join(key) or 'none declared'})"
            )
        if self.grows is not None and (
            self.grows not in self.columns or self.on_conflict is not OnConflict.REPLACE
        ):
            raise ValueError(f"`grows` must name a written column of a REPLACE sink: {self.grows}")
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "key_positions", tuple(self.columns.index(c) for c in key))
        json_positions = tuple(
            i for i, c in enumerate(self.columns) if isinstance(self.table.c[c].type, sa.JSON)
        )
        object.__setattr__(self, "json_positions", json_positions)

    def distinct(self, rows: Sequence[T]) -> list[tuple[Any, ...]]:
        """The rows' column values, one per primary key: the first of a key when duplicates
        are ignored, the last when they replace (one statement cannot touch a row twice)."""
        by_key: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        positions = self.key_positions
        replace = self.on_conflict is OnConflict.REPLACE
        for row in rows:
            values = self.values(row)
            key = tuple(values[i] for i in positions)
            if replace or key not in by_key:
                by_key[key] = values
        return list(by_key.values())


def _count(status: str) -> int:
    # asyncpg returns the command tag: "INSERT 0 <rows>".
    return int(status.rsplit(" ", 1)[-1])


class PostgresTableSink(Generic[T]):
    """Writes a declared sink's rows on PostgreSQL: COPY into a stage, then one
    INSERT … SELECT … ON CONFLICT per batch; `written` counts rows inserted or changed."""

    def __init__(self, spec: TableSink[T]) -> None:
        self._spec = spec
        table = spec.table
        self._stage = Stage(
            f"{table.name}_sink_stage",
            tuple((c, table.c[c].type.compile(dialect=_POSTGRES)) for c in spec.columns),
        )
        columns = ", ".join(_quote(c) for c in spec.columns)
        keys = ", ".join(_quote(c) for c in spec.key)
        # Identifiers of a declared table (code, not input), quoted.
        insert = (
            f"INSERT INTO {_quote(table.name)} AS t ({columns}) "  # noqa: S608
            f"SELECT {columns} FROM {self._stage.name} ON CONFLICT ({keys}) "
        )
        rest = [_quote(c) for c in spec.columns if c not in spec.key]
        if spec.on_conflict is OnConflict.IGNORE or not rest:
            self._sql = insert + "DO NOTHING"
        else:
            assignments = ", ".join(f"{c} = excluded.{c}" for c in rest)
            stored = ", ".join(f"t.{c}" for c in rest)
            new = ", ".join(f"excluded.{c}" for c in rest)
            # A row stored with the same values is not rewritten (and not counted).
            condition = f"({stored}) IS DISTINCT FROM ({new})"
            if spec.grows is not None:
                grows = _quote(spec.grows)
                condition += f" AND t.{grows} <= excluded.{grows}"
            self._sql = insert + f"DO UPDATE SET {assignments} WHERE {condition}"

    async def write(
        self, driver: Any, rows: Sequence[T], origins: Sequence[Record | None]
    ) -> SinkResult:
        """Store `rows` in the open transaction of `driver` (an asyncpg connection)."""
        if not rows:
            return SinkResult(written=0)
        records = self._spec.distinct(rows)
        if self._spec.json_positions:
            records = [_json_encoded(r, self._spec.json_positions) for r in records]
        await self._stage.fill(driver, records)
        return SinkResult(written=_count(await driver.execute(self._sql)))


def _json_encoded(values: tuple[Any, ...], positions: tuple[int, ...]) -> tuple[Any, ...]:
    encoded = list(values)
    for i in positions:
        encoded[i] = json.dumps(encoded[i])
    return tuple(encoded)


class SqliteTableSink(Generic[T]):
    """Writes a declared sink's rows on SQLite: one executemany of INSERT … ON CONFLICT."""

    def __init__(self, spec: TableSink[T]) -> None:
        self._spec = spec
        insert = sqlite_insert(spec.table)
        rest = [c for c in spec.columns if c not in spec.key]
        if spec.on_conflict is OnConflict.IGNORE or not rest:
            self._statement = insert.on_conflict_do_nothing(index_elements=list(spec.key))
        else:
            table, excluded = spec.table, insert.excluded
            changed = sa.tuple_(*(table.c[c] for c in rest)).is_distinct_from(
                sa.tuple_(*(excluded[c] for c in rest))
            )
            condition = (
                changed
                if spec.grows is None
                else sa.and_(changed, table.c[spec.grows] <= excluded[spec.grows])
            )
            self._statement = insert.on_conflict_do_update(
                index_elements=list(spec.key),
                set_={c: excluded[c] for c in rest},
                where=condition,
            )

    async def write(
        self, conn: AsyncConnection, rows: Sequence[T], origins: Sequence[Record | None]
    ) -> SinkResult:
        """Store `rows` in `conn`'s open transaction."""
        if not rows:
            return SinkResult(written=0)
        columns = self._spec.columns
        params = [dict(zip(columns, values, strict=True)) for values in self._spec.distinct(rows)]
        result = await conn.execute(self._statement, params)
        return SinkResult(written=max(result.rowcount, 0))


def postgres_table_sinks(declared: dict[str, TableSink[Any]]) -> dict[str, PostgresTableSink[Any]]:
    """The PostgreSQL writers of the declared sinks, by sink name."""
    return {name: PostgresTableSink(spec) for name, spec in declared.items()}


def sqlite_table_sinks(declared: dict[str, TableSink[Any]]) -> dict[str, SqliteTableSink[Any]]:
    """The SQLite writers of the declared sinks, by sink name."""
    return {name: SqliteTableSink(spec) for name, spec in declared.items()}
