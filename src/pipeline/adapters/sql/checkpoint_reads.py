"""What the SQL checkpoint stores read alike on PostgreSQL and SQLite: stored offsets and
state, and the ping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline.adapters.sql.errors import store_errors
from pipeline.adapters.sql.tables import consumer_offsets, stream_state
from pipeline.application.ports.records import TopicPartition

State = dict[int, dict[str, list[tuple[bytes, bytes]]]]
"""Per partition, per step id, serialized (key, value) pairs."""


async def read_offsets(
    conn: AsyncConnection, group_id: str, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """The stored next offsets of `partitions` in `group_id`; the ones never stored are
    absent."""
    if not partitions:
        return {}
    t = consumer_offsets
    rows = await conn.execute(
        sa.select(t.c.topic, t.c.partition, t.c.next_offset).where(
            t.c.group_id == group_id,
            sa.tuple_(t.c.topic, t.c.partition).in_([(p.topic, p.partition) for p in partitions]),
        )
    )
    return {TopicPartition(topic, partition): int(offset) for topic, partition, offset in rows}


def group_state(parts: Sequence[int], rows: Sequence[Sequence[Any]]) -> State:
    """`(partition, step, key, value)` rows as per-partition, per-step pairs, with an
    entry for every partition asked for."""
    state: State = {part: {} for part in parts}
    for part, step, key, value in rows:
        state[part].setdefault(step, []).append((bytes(key), bytes(value)))
    return state


class SqlCheckpointReads:
    """The reading half of a SQL CheckpointStore, on an AsyncEngine whose database the
    Alembic migrations created."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The engine the store runs on."""
        return self._engine

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The next offset to read per partition, as stored with the group's last batch;
        partitions the group never stored are absent."""
        with store_errors("reading stored offsets"):
            async with self._engine.connect() as conn:
                return await read_offsets(conn, group_id, partitions)

    async def load_state(self, group_id: str, parts: Sequence[int]) -> State:
        """The group's state of `parts`: per partition (every one asked for, empty when it
        has none), per step id, the serialized (key, value) pairs."""
        if not parts:
            return {}
        t = stream_state
        query = sa.select(t.c.partition, t.c.step, t.c.key, t.c.value).where(
            t.c.group_id == group_id, t.c.partition.in_(list(parts))
        )
        with store_errors("loading stream state"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return group_state(parts, rows)

    async def ping(self) -> None:
        """Return when the database answers a trivial query; StoreUnavailable otherwise."""
        with store_errors("pinging the database"):
            async with self._engine.connect() as conn:
                await conn.execute(sa.select(sa.literal(1)))
