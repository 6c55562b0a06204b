"""The checkpoint of jobs under database authority in PostgreSQL: one transaction per batch
on the asyncpg connection under SQLAlchemy's pool, every table written set-based (one
statement per table and batch, whatever the batch's size: state COPYed into a staging
table, then upserted)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.checkpoint_plan import (
    CheckpointPlan,
    check_sinks,
    partitions_of,
    plan_checkpoint,
)
from pipeline.adapters.sql import dead_letters, postgres_stage
from pipeline.adapters.sql.checkpoint_reads import SqlCheckpointReads, State
from pipeline.adapters.sql.errors import is_transient, store_errors
from pipeline.adapters.sql.postgres_stage import Stage
from pipeline.application.ports.checkpoint import CheckpointBatch, Committed, SinkResult
from pipeline.application.ports.records import Record, TopicPartition


class PostgresSink(Protocol):
    """Writes one batch's rows of one sink, inside the checkpoint's transaction."""

    async def write(
        self, driver: Any, rows: Sequence[Any], origins: Sequence[Record | None]
    ) -> SinkResult:
        """Store `rows` (each from the record in `origins` at the same index, or None) on
        `driver`, the asyncpg connection whose transaction is open."""
        ...


# A partition the group never stored gets its row, at the batch's start offset, so that it
# can be locked like the others: two first batches of one partition (a zombie and the new
# owner) then queue on that row instead of both passing the fence. A claimed row whose
# partition ends up fenced is removed again (_UNCLAIM_OFFSETS): it stored nothing.
_CLAIM_OFFSETS = """
INSERT INTO consumer_offsets (group_id, topic, "partition", next_offset, updated_at)
SELECT $1, p.topic, p."partition", p.next_offset, now()
FROM unnest($2::text[], $3::int4[], $4::int8[]) AS p(topic, "partition", next_offset)
ON CONFLICT (group_id, topic, "partition") DO NOTHING
RETURNING topic, "partition"
"""

_UNCLAIM_OFFSETS = """
DELETE FROM consumer_offsets AS o
USING unnest($2::text[], $3::int4[]) AS p(topic, "partition")
WHERE o.group_id = $1 AND o.topic = p.topic AND o."partition" = p."partition"
"""

# Rows are locked in a fixed order so that two commits of one group cannot deadlock.
_LOCK_OFFSETS = """
SELECT o.topic, o."partition", o.next_offset
FROM consumer_offsets AS o
JOIN unnest($2::text[], $3::int4[]) AS p(topic, "partition")
  ON o.topic = p.topic AND o."partition" = p."partition"
WHERE o.group_id = $1
ORDER BY o.topic, o."partition"
FOR UPDATE OF o
"""

_STORE_OFFSETS = """
INSERT INTO consumer_offsets AS o (group_id, topic, "partition", next_offset, updated_at)
SELECT $1, p.topic, p."partition", p.next_offset, now()
FROM unnest($2::text[], $3::int4[], $4::int8[]) AS p(topic, "partition", next_offset)
ON CONFLICT (group_id, topic, "partition") DO UPDATE SET
    next_offset = GREATEST(o.next_offset, excluded.next_offset),
    updated_at = excluded.updated_at
"""

_STATE = Stage(
    "stream_state_stage",
    (("step", "text"), ("partition", "int4"), ("key", "bytea"), ("value", "bytea")),
)
_UPSERT_STATE = """
INSERT INTO stream_state AS s (group_id, step, "partition", key, value, updated_at)
SELECT $1, c.step, c."partition", c.key, c.value, now()
FROM stream_state_stage AS c
ON CONFLICT (group_id, "partition", step, key) DO UPDATE SET
    value = excluded.value,
    updated_at = excluded.updated_at
"""

_DELETE_STATE = """
DELETE FROM stream_state AS s
USING unnest($2::text[], $3::int4[], $4::bytea[]) AS c(step, "partition", key)
WHERE s.group_id = $1 AND s."partition" = c."partition" AND s.step = c.step AND s.key = c.key
"""

# One row per partition and step, its keys and values as two arrays (the aggregates of a
# group read its rows in one pass, so they line up): asyncpg decodes a bytea[] in one go,
# where a row per entry costs a Python object per row and column; at a million entries
# that is most of a restore's time. The server holds the arrays while it builds them:
# about the size of the state restored (250 MB for the benchmark's million windows).
_LOAD_STATE = """
SELECT "partition", step, array_agg(key), array_agg(value)
FROM stream_state
WHERE group_id = $1 AND "partition" = ANY($2::int4[])
GROUP BY "partition", step
"""


class PostgresCheckpointStore(SqlCheckpointReads):
    """CheckpointStore on PostgreSQL through an asyncpg AsyncEngine, with the sink writers
    bound by sink name. Transient database failures surface as StoreUnavailable; a commit
    that fails for any reason leaves nothing of its batch."""

    def __init__(self, engine: AsyncEngine, sinks: Mapping[str, PostgresSink]) -> None:
        super().__init__(engine)
        self._sinks = dict(sinks)

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """In one transaction: lock the group's offsets of the batch's partitions (creating
        the missing ones), fence the partitions already past the batch's start, write the
        rest's sink rows, state changes, dead letters and next offsets (GREATEST)."""
        check_sinks(batch, self._sinks)
        with store_errors("committing a checkpoint"):
            async with self._driver() as driver, driver.transaction():
                return await self._commit(driver, batch)

    async def load_state(self, group_id: str, parts: Sequence[int]) -> State:
        """The group's state of `parts`: per partition (every one asked for, empty when it
        has none), per step id, the serialized (key, value) pairs."""
        if not parts:
            return {}
        with store_errors("loading stream state"):
            async with self._driver() as driver:
                rows = await driver.fetch(_LOAD_STATE, group_id, list(parts))
        state: State = {part: {} for part in parts}
        for part, step, keys, values in rows:
            state[part][step] = list(zip(keys, values, strict=True))
        return state

    @asynccontextmanager
    async def _driver(self) -> AsyncIterator[Any]:
        # Straight on asyncpg: its transaction is opened by asyncpg itself (SQLAlchemy would
        # only BEGIN lazily on a statement of its own) and rows skip SQLAlchemy's
        # processing, which matters at millions of state entries.
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            try:
                yield driver
            except BaseException as exc:
                postgres_stage.forget(driver)
                # A lost connection, or one interrupted mid-statement by cancellation, is not
                # handed back to the pool.
                if not isinstance(exc, Exception) or is_transient(exc) or driver.is_closed():
                    await conn.invalidate()
                raise

    async def _commit(self, driver: Any, batch: CheckpointBatch) -> Committed:
        group = batch.group_id
        stored, claimed = await self._lock_offsets(driver, batch)
        plan = plan_checkpoint(batch, stored)
        unclaim = sorted(tp for tp in claimed if tp in plan.fenced)
        if unclaim:
            await driver.execute(
                _UNCLAIM_OFFSETS,
                group,
                [tp.topic for tp in unclaim],
                [tp.partition for tp in unclaim],
            )
        written: dict[str, int] = {}
        events: list[object] = []
        for write in plan.writes:
            result = await self._sinks[write.sink].write(driver, write.rows, write.origins)
            written[write.sink] = result.written
            events.extend(result.events)
        await self._write_state(driver, group, plan)
        if plan.dead_letters:
            arguments = dead_letters.postgres_arguments(plan.dead_letters)
            await driver.execute(dead_letters.POSTGRES_INSERT, *arguments)
        if plan.next_offsets:
            items = plan.next_offsets
            await driver.execute(
                _STORE_OFFSETS,
                group,
                [tp.topic for tp, _ in items],
                [tp.partition for tp, _ in items],
                [offset for _, offset in items],
            )
        return Committed(written=written, events=tuple(events), fenced=plan.fenced)

    @staticmethod
    async def _lock_offsets(
        driver: Any, batch: CheckpointBatch
    ) -> tuple[dict[TopicPartition, int], set[TopicPartition]]:
        """The stored offsets of the batch's partitions, their rows locked, and the rows
        claimed for partitions that had none."""
        stored = await _lock(driver, batch.group_id, partitions_of(batch))
        missing = sorted((tp, o) for tp, o in batch.start_offsets.items() if tp not in stored)
        if not missing:
            return stored, set()
        rows = await driver.fetch(
            _CLAIM_OFFSETS,
            batch.group_id,
            [tp.topic for tp, _ in missing],
            [tp.partition for tp, _ in missing],
            [offset for _, offset in missing],
        )
        claimed = {TopicPartition(r[0], r[1]) for r in rows}
        # A row another commit claimed meanwhile was waited for: its offset is read now.
        stored.update(await _lock(driver, batch.group_id, [tp for tp, _ in missing]))
        return stored, claimed

    @staticmethod
    async def _write_state(driver: Any, group: str, plan: CheckpointPlan) -> None:
        if plan.upserts:
            await _STATE.fill(driver, [(c.step, c.part, c.key, c.value) for c in plan.upserts])
            await driver.execute(_UPSERT_STATE, group)
        if plan.deletes:
            d = plan.deletes
            await driver.execute(
                _DELETE_STATE, group, [c.step for c in d], [c.part for c in d], [c.key for c in d]
            )


async def _lock(
    driver: Any, group: str, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    rows = await driver.fetch(
        _LOCK_OFFSETS, group, [tp.topic for tp in partitions], [tp.partition for tp in partitions]
    )
    return {TopicPartition(r[0], r[1]): int(r[2]) for r in rows}
