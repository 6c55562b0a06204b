"""Dead letters in PostgreSQL or SQLite: written with the batch that rejected them, read and
purged by the DLQ tool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.sql.engine import WRITE_TRANSACTION
from pipeline.adapters.sql.errors import store_errors
from pipeline.adapters.sql.tables import dead_letters as t
from pipeline.application.ports import DeadLetter, DeadLetterFilter

# One row per dead letter, passed as parallel arrays: idempotent by the natural key.
POSTGRES_INSERT = """
INSERT INTO dead_letters (source_topic, source_partition, source_offset, record_key,
                          record_value, record_timestamp_ms, error_class, message, stack_trace,
                          attempts, first_failed_at, last_failed_at, worker_id, group_id)
SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::bytea[], $5::bytea[],
                     $6::int8[], $7::text[], $8::text[], $9::text[], $10::int4[],
                     $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[])
ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
"""


def postgres_arguments(letters: Sequence[DeadLetter]) -> list[list[Any]]:
    """The array arguments of POSTGRES_INSERT."""
    rows = [list(row.values()) for row in rows_of(letters)]
    return [list(column) for column in zip(*rows, strict=True)]


def rows_of(letters: Sequence[DeadLetter]) -> list[dict[str, Any]]:
    """The `dead_letters` rows of `letters` (columns in table order)."""
    return [
        {
            "source_topic": x.topic,
            "source_partition": x.partition,
            "source_offset": x.offset,
            "record_key": x.key,
            "record_value": x.value,
            "record_timestamp_ms": x.timestamp_ms,
            "error_class": x.error_class,
            "message": x.message,
            "stack_trace": x.stack_trace,
            "attempts": x.attempts,
            "first_failed_at": x.first_failed_at,
            "last_failed_at": x.last_failed_at,
            "worker_id": x.worker_id,
            "group_id": x.group_id,
        }
        for x in letters
    ]


def _where(query: DeadLetterFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.topic is not None:
        conditions.append(t.c.source_topic == query.topic)
    if query.partition is not None:
        conditions.append(t.c.source_partition == query.partition)
    if query.error_class is not None:
        conditions.append(t.c.error_class == query.error_class)
    if query.since is not None:
        conditions.append(t.c.last_failed_at >= query.since)
    if query.until is not None:
        conditions.append(t.c.last_failed_at < query.until)
    if query.from_offset is not None:
        conditions.append(t.c.source_offset >= query.from_offset)
    if query.to_offset is not None:
        conditions.append(t.c.source_offset < query.to_offset)
    return conditions


def _letter(row: sa.Row[Any]) -> DeadLetter:
    m = row._mapping
    return DeadLetter(
        topic=m["source_topic"],
        partition=m["source_partition"],
        offset=m["source_offset"],
        key=None if m["record_key"] is None else bytes(m["record_key"]),
        value=None if m["record_value"] is None else bytes(m["record_value"]),
        timestamp_ms=m["record_timestamp_ms"],
        error_class=m["error_class"],
        message=m["message"],
        stack_trace=m["stack_trace"],
        attempts=m["attempts"],
        first_failed_at=m["first_failed_at"],
        last_failed_at=m["last_failed_at"],
        worker_id=m["worker_id"],
        group_id=m["group_id"],
    )


class SqlDeadLetterStore:
    """DeadLetterStore on the `dead_letters` table (created by migration 0002)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find_dead_letters(
        self, query: DeadLetterFilter, *, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters matching `query`, by topic, partition and offset."""
        statement = (
            sa.select(t)
            .where(*_where(query))
            .order_by(t.c.source_topic, t.c.source_partition, t.c.source_offset)
            .limit(limit)
        )
        with store_errors("reading dead letters"):
            async with self._engine.connect() as conn:
                return [_letter(row) for row in await conn.execute(statement)]

    async def dead_letter(self, topic: str, partition: int, offset: int) -> DeadLetter | None:
        """The dead letter of the record at (topic, partition, offset), if there is one."""
        statement = sa.select(t).where(
            t.c.source_topic == topic,
            t.c.source_partition == partition,
            t.c.source_offset == offset,
        )
        with store_errors("reading a dead letter"):
            async with self._engine.connect() as conn:
                row = (await conn.execute(statement)).first()
        return None if row is None else _letter(row)

    async def purge_dead_letters(self, query: DeadLetterFilter) -> int:
        """Delete the dead letters matching `query`; return how many were deleted."""
        with store_errors("purging dead letters"):
            async with self._engine.connect() as plain:
                conn = await plain.execution_options(**WRITE_TRANSACTION)
                async with conn.begin():
                    result = await conn.execute(sa.delete(t).where(*_where(query)))
        return int(result.rowcount)
