"""The checkpoint of jobs under database authority in PostgreSQL: one transaction per batch
on the asyncpg connection under SQLAlchemy's pool, every table written set-based (one
statement per table and batch, whatever the batch's size).

A batch's state changes are appended to `stream_state_log`: one row per partition and step,
its keys and values as two arrays (a null value deletes the key), not one upsert per key.
Every `FOLD_AT` rows (or `FOLD_ENTRIES` changed keys) of a partition, the store folds its
log into `stream_state` (the last change of each key wins) in a transaction of its own, in
the background on another pooled connection: no commit waits for a fold. A restore reads
`stream_state` and then the log in order, so it reads the same state before and after a
fold. Measured on the sensors job's batches of 250 readings (250 windows): the state's part
of a commit went from 2.6 ms (COPY to a stage, an upsert of 250 rows) to 1.2 ms, the commit
from ~14 to ~12 ms. Folded inside the commits (every 32 rows, before), a fold took 7 ms
mean and 15 ms at p95 in one commit of three at 5,000 readings/s: the latency's tail."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
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
from pipeline.application.ports.checkpoint import CheckpointBatch, Committed, SinkResult
from pipeline.application.ports.records import Record, TopicPartition

log = structlog.get_logger(__name__)


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


def _store_offsets(first: int) -> str:
    """The upsert of a group's ($1) next offsets: topics, partitions and offsets as arrays in
    parameters `first`, `first` + 1 and `first` + 2."""
    topics, partitions, offsets = (f"${first + i}" for i in range(3))
    return f"""
INSERT INTO consumer_offsets AS o (group_id, topic, "partition", next_offset, updated_at)
SELECT $1, p.topic, p."partition", p.next_offset, now()
FROM unnest({topics}::text[], {partitions}::int4[], {offsets}::int8[])
     AS p(topic, "partition", next_offset)
ON CONFLICT (group_id, topic, "partition") DO UPDATE SET
    next_offset = GREATEST(o.next_offset, excluded.next_offset),
    updated_at = excluded.updated_at
"""  # noqa: S608 - parameter numbers, no input


_STORE_OFFSETS = _store_offsets(2)

FOLD_AT = 256
"""Log rows of a partition after which the store folds them into `stream_state`: the most a
restore reads beyond the folded state is about this many batches' changes. The more rows a
fold takes, the more changes of one key it folds into one write (a window changes with
every batch while it is open): in `pipeline bench sensors --rates 5000,10000`, the folds
took 0.29–0.47 s of the database in all, every 256 rows, against 1.25–1.35 s every 32."""
FOLD_ENTRIES = 32_768
"""Key changes logged for a partition after which the store folds them, however few the
rows: when batches change many keys each, a fold's work stays bounded."""

# A log row per partition and step: their keys and values are slices [first:last] of the
# batch's keys and values, passed as two arrays (one statement, whatever the rows).
_APPEND_STATE = """
INSERT INTO stream_state_log (group_id, "partition", step, keys, vals)
SELECT $1, s.part, s.step, ($6::bytea[])[s.first:s.last], ($7::bytea[])[s.first:s.last]
FROM unnest($2::int4[], $3::text[], $4::int4[], $5::int4[]) AS s(part, step, first, last)
"""
# The state's log rows and the next offsets, in one round trip.
_APPEND_STATE_AND_STORE_OFFSETS = f"WITH appended AS ({_APPEND_STATE}){_store_offsets(8)}"

# The log of one partition into the folded state, the last change of each key winning. Its
# statements see one snapshot: the upsert and the delete touch different keys (a value, or
# none). A partition's log rows are appended by one commit at a time (they hold its offsets'
# row lock), so the rows a fold sees are all those before some commit, in order; rows
# appended meanwhile stay in the log, after what was folded. Two folds of one partition (a
# member that lost it and its new owner) do not fold a row twice: the second waits on the
# rows the first deletes and skips them.
_FOLD_STATE = """
WITH logged AS (
    DELETE FROM stream_state_log
    WHERE group_id = $1 AND "partition" = $2
    RETURNING step, seq, keys, vals
), latest AS (
    SELECT DISTINCT ON (l.step, c.key) l.step, c.key, c.val
    FROM logged AS l, unnest(l.keys, l.vals) AS c(key, val)
    ORDER BY l.step, c.key, l.seq DESC
), stored AS (
    INSERT INTO stream_state AS s (group_id, step, "partition", key, value, updated_at)
    SELECT $1, step, $2, key, val, now() FROM latest WHERE val IS NOT NULL
    ON CONFLICT (group_id, "partition", step, key) DO UPDATE SET
        value = excluded.value,
        updated_at = excluded.updated_at
)
DELETE FROM stream_state AS s
USING latest AS c
WHERE c.val IS NULL
  AND s.group_id = $1 AND s."partition" = $2 AND s.step = c.step AND s.key = c.key
"""

# One row per partition and step of the folded state, its keys and values as two arrays
# (the aggregates of a group read its rows in one pass, so they line up): asyncpg decodes
# a bytea[] in one go, where a row per entry costs a Python object per row and column; at
# a million entries that is most of a restore's time. The server holds the arrays while it
# builds them: about the size of the state restored (250 MB for the benchmark's million
# windows). Then the log, in the order it was written (seq 0: the folded state).
_LOAD_STATE = """
SELECT "partition", step, array_agg(key), array_agg(value), 0::int8 AS seq
FROM stream_state
WHERE group_id = $1 AND "partition" = ANY($2::int4[])
GROUP BY "partition", step
UNION ALL
SELECT "partition", step, keys, vals, seq
FROM stream_state_log
WHERE group_id = $1 AND "partition" = ANY($2::int4[])
ORDER BY 1, 2, 5
"""


@dataclass(slots=True)
class _Logged:
    """What a partition's log holds since its last fold."""

    rows: int = 0
    entries: int = 0

    def add(self, entries: int) -> None:
        """Count one log row of `entries` key changes."""
        self.rows += 1
        self.entries += entries


class PostgresCheckpointStore(SqlCheckpointReads):
    """CheckpointStore on PostgreSQL through an asyncpg AsyncEngine, with the sink writers
    bound by sink name. Transient database failures surface as StoreUnavailable; a commit
    that fails for any reason leaves nothing of its batch. A partition's state log is folded
    once it holds `fold_at` rows or `fold_entries` key changes, one partition at a time, in
    the background (`close` waits for the fold under way). A fold that fails leaves the log
    as it was (a warning says so) and is tried again after the next commit."""

    def __init__(
        self,
        engine: AsyncEngine,
        sinks: Mapping[str, PostgresSink],
        *,
        fold_at: int = FOLD_AT,
        fold_entries: int = FOLD_ENTRIES,
    ) -> None:
        super().__init__(engine)
        self._sinks = dict(sinks)
        self._fold_at = fold_at
        self._fold_entries = fold_entries
        # Log rows and key changes per (group, partition) since its last fold, as far as this
        # store knows (from the last restore and its own commits): only when to fold depends
        # on them.
        self._logged: dict[tuple[str, int], _Logged] = {}
        self._folding: asyncio.Task[None] | None = None
        self._closed = False

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """In one transaction: lock the group's offsets of the batch's partitions (creating
        the missing ones), fence the partitions already past the batch's start, write the
        rest's sink rows, state changes, dead letters and next offsets (GREATEST)."""
        check_sinks(batch, self._sinks)
        with store_errors("committing a checkpoint"):
            async with self._driver() as driver, driver.transaction():
                committed = await self._commit(driver, batch)
        self._fold_when_due()
        return committed

    async def close(self) -> None:
        """Wait for the fold under way, if any; start no other."""
        self._closed = True
        if self._folding is not None:
            await self._folding

    def _fold_when_due(self) -> None:
        """Start folding the partition whose log holds the most changes among those due,
        unless a fold is under way (it starts the next due when it ends)."""
        if self._closed or (self._folding is not None and not self._folding.done()):
            return
        due = [
            (counts.entries, group, part)
            for (group, part), counts in self._logged.items()
            if counts.rows >= self._fold_at or counts.entries >= self._fold_entries
        ]
        if not due:
            return
        _, group, part = max(due)
        counts = self._logged.pop((group, part))
        # In a context of its own: not a child of the batch's span, nor logged with its
        # fields.
        self._folding = asyncio.create_task(
            self._fold(group, part, counts),
            name=f"fold stream state {group}[{part}]",
            context=contextvars.Context(),
        )

    async def _fold(self, group: str, part: int, counts: _Logged) -> None:
        try:
            with store_errors("folding stream state"):
                async with self._driver() as driver, driver.transaction():
                    await driver.execute(_FOLD_STATE, group, part)
        except Exception as error:  # noqa: BLE001 - the log stays whole: folded later
            log.warning(
                "folding the state log failed; it is folded after the next commits",
                group=group,
                partition=part,
                error=str(error),
            )
            later = self._logged.setdefault((group, part), _Logged())
            later.rows += counts.rows
            later.entries += counts.entries
            return
        # The next partition due, if any, right away (a failed fold waits for a commit).
        self._folding = None
        self._fold_when_due()

    async def load_state(self, group_id: str, parts: Sequence[int]) -> State:
        """The group's state of `parts`: per partition (every one asked for, empty when it
        has none), per step id, the serialized (key, value) pairs."""
        if not parts:
            return {}
        for part in parts:
            self._logged.pop((group_id, part), None)
        with store_errors("loading stream state"):
            async with self._driver() as driver:
                rows = await driver.fetch(_LOAD_STATE, group_id, list(parts))
        state: State = {part: {} for part in parts}
        changes: dict[tuple[int, str], dict[bytes, bytes | None]] = {}
        for part, step, keys, values, seq in rows:
            if seq == 0:
                state[part][step] = list(zip(keys, values, strict=True))
                continue
            changes.setdefault((part, step), {}).update(zip(keys, values, strict=True))
            self._logged.setdefault((group_id, part), _Logged()).add(len(keys))
        for (part, step), changed in changes.items():
            kept = [(k, v) for k, v in state[part].get(step, ()) if k not in changed]
            kept.extend((k, v) for k, v in changed.items() if v is not None)
            if kept:
                state[part][step] = kept
            else:
                state[part].pop(step, None)
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
        if plan.dead_letters:
            arguments = dead_letters.postgres_arguments(plan.dead_letters)
            await driver.execute(dead_letters.POSTGRES_INSERT, *arguments)
        await self._write_state_and_offsets(driver, group, plan)
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

    async def _write_state_and_offsets(self, driver: Any, group: str, plan: CheckpointPlan) -> None:
        """Append the batch's state changes to the log, a row per partition and step, and
        store its next offsets (one statement); count the rows each partition's log holds."""
        logged: dict[tuple[int, str], tuple[list[bytes], list[bytes | None]]] = {}
        for change in (*plan.upserts, *plan.deletes):
            keys, values = logged.setdefault((change.part, change.step), ([], []))
            keys.append(change.key)
            values.append(change.value)
        offsets = plan.next_offsets
        stored = (
            [tp.topic for tp, _ in offsets],
            [tp.partition for tp, _ in offsets],
            [offset for _, offset in offsets],
        )
        if not logged:
            if offsets:
                await driver.execute(_STORE_OFFSETS, group, *stored)
            return
        parts, steps, firsts, lasts = [], [], [], []
        all_keys: list[bytes] = []
        all_values: list[bytes | None] = []
        for (part, step), (keys, values) in logged.items():
            parts.append(part)
            steps.append(step)
            firsts.append(len(all_keys) + 1)
            all_keys.extend(keys)
            all_values.extend(values)
            lasts.append(len(all_keys))
        await driver.execute(
            _APPEND_STATE_AND_STORE_OFFSETS,
            group,
            parts,
            steps,
            firsts,
            lasts,
            all_keys,
            all_values,
            *stored,
        )
        for (part, _), (keys, _) in logged.items():
            self._logged.setdefault((group, part), _Logged()).add(len(keys))


async def _lock(
    driver: Any, group: str, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    rows = await driver.fetch(
        _LOCK_OFFSETS, group, [tp.topic for tp in partitions], [tp.partition for tp in partitions]
    )
    return {TopicPartition(r[0], r[1]): int(r[2]) for r in rows}
