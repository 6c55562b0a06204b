"""The checkpoint of jobs under database authority in SQLite (the embedded demo's database),
with SQLAlchemy Core: one write-locked transaction per batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline.adapters.checkpoint_plan import (
    CheckpointPlan,
    check_sinks,
    partitions_of,
    plan_checkpoint,
)
from pipeline.adapters.sql.checkpoint_reads import SqlCheckpointReads, read_offsets
from pipeline.adapters.sql.dead_letters import rows_of
from pipeline.adapters.sql.engine import WRITE_TRANSACTION
from pipeline.adapters.sql.errors import store_errors
from pipeline.adapters.sql.tables import consumer_offsets, dead_letters, stream_state
from pipeline.application.ports.checkpoint import CheckpointBatch, Committed, SinkResult
from pipeline.application.ports.records import Record


class SqliteSink(Protocol):
    """Writes one batch's rows of one sink, inside the checkpoint's transaction."""

    async def write(
        self, conn: AsyncConnection, rows: Sequence[Any], origins: Sequence[Record | None]
    ) -> SinkResult:
        """Store `rows` (each from the record in `origins` at the same index, or None) on
        `conn`, whose transaction is open."""
        ...


class SqliteCheckpointStore(SqlCheckpointReads):
    """CheckpointStore on SQLite through an aiosqlite AsyncEngine, with the sink writers
    bound by sink name. The transaction takes the database's write lock first (BEGIN
    IMMEDIATE), so the offsets it reads cannot change before it commits."""

    def __init__(self, engine: AsyncEngine, sinks: Mapping[str, SqliteSink]) -> None:
        super().__init__(engine)
        self._sinks = dict(sinks)

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """In one transaction: read the group's offsets of the batch's partitions, fence the
        partitions already past the batch's start, write the rest's sink rows, state
        changes, dead letters and next offsets (an offset never moves back)."""
        check_sinks(batch, self._sinks)
        with store_errors("committing a checkpoint"):
            async with self._engine.connect() as plain:
                conn = await plain.execution_options(**WRITE_TRANSACTION)
                async with conn.begin():
                    return await self._commit(conn, batch)

    async def close(self) -> None:
        """Nothing runs in the background."""

    async def _commit(self, conn: AsyncConnection, batch: CheckpointBatch) -> Committed:
        stored = await read_offsets(conn, batch.group_id, partitions_of(batch))
        plan = plan_checkpoint(batch, stored)
        written: dict[str, int] = {}
        events: list[object] = []
        for write in plan.writes:
            result = await self._sinks[write.sink].write(conn, write.rows, write.origins)
            written[write.sink] = result.written
            events.extend(result.events)
        await _write_state(conn, batch.group_id, plan)
        if plan.dead_letters:
            await conn.execute(
                sqlite_insert(dead_letters).on_conflict_do_nothing(), rows_of(plan.dead_letters)
            )
        if plan.next_offsets:
            upsert = sqlite_insert(consumer_offsets)
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["group_id", "topic", "partition"],
                    set_={
                        # SQLite's two-argument max() is GREATEST: an offset never moves back.
                        "next_offset": sa.func.max(
                            consumer_offsets.c.next_offset, upsert.excluded.next_offset
                        ),
                        "updated_at": sa.func.current_timestamp(),
                    },
                ),
                [
                    {
                        "group_id": batch.group_id,
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "next_offset": offset,
                    }
                    for tp, offset in plan.next_offsets
                ],
            )
        return Committed(written=written, events=tuple(events), fenced=plan.fenced)


async def _write_state(conn: AsyncConnection, group: str, plan: CheckpointPlan) -> None:
    if plan.upserts:
        upsert = sqlite_insert(stream_state)
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["group_id", "partition", "step", "key"],
                set_={"value": upsert.excluded.value, "updated_at": sa.func.current_timestamp()},
            ),
            [
                {
                    "group_id": group,
                    "step": c.step,
                    "partition": c.part,
                    "key": c.key,
                    "value": c.value,
                }
                for c in plan.upserts
            ],
        )
    if plan.deletes:
        t = stream_state
        await conn.execute(
            sa.delete(t).where(
                t.c.group_id == sa.bindparam("g"),
                t.c.partition == sa.bindparam("p"),
                t.c.step == sa.bindparam("s"),
                t.c.key == sa.bindparam("k"),
            ),
            [{"g": group, "p": c.part, "s": c.step, "k": c.key} for c in plan.deletes],
        )
