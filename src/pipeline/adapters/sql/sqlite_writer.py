"""Applying a sensor batch to SQLite, with SQLAlchemy Core.

SQLite has no population standard deviation (nor, in every build, a square root), so the
aggregates of the touched windows are recomputed in Python from the stored readings with the
domain's own `aggregate_window`: exact, and the same arithmetic as the in-memory store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pipeline.adapters.sql.batch import WINDOW, BatchPlan, partitions_of, plan_batch
from pipeline.adapters.sql.dead_letters import rows_of
from pipeline.adapters.sql.engine import WRITE_TRANSACTION
from pipeline.adapters.sql.tables import (
    alerts,
    consumer_offsets,
    dead_letters,
    reading_aggregates_1m,
    readings,
)
from pipeline.application.ports import AppliedBatch, SensorBatch, TopicPartition
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import aggregate_window

# Three parameters per window; stays well under SQLite's limit on bound parameters.
_WINDOWS_PER_QUERY = 250


class SqliteBatchWriter:
    """Applies a SensorBatch to SQLite in one write-locked transaction."""

    async def apply(self, conn: AsyncConnection, batch: SensorBatch) -> AppliedBatch:
        """Apply `batch` in one transaction of its own on `conn`."""
        # BEGIN IMMEDIATE (see engine.py): the write lock is held from the first read, so the
        # offsets read below cannot change before this transaction commits.
        conn = await conn.execution_options(**WRITE_TRANSACTION)
        async with conn.begin():
            stored = await self._stored_offsets(conn, batch.group_id, partitions_of(batch))
            plan = plan_batch(batch, stored)
            inserted = await self._insert_readings(conn, plan)
            await self._recompute_aggregates(conn, plan.windows)
            new_alerts = await self._insert_alerts(conn, plan)
            if batch.dead_letters:
                await conn.execute(
                    sqlite_insert(dead_letters).on_conflict_do_nothing(),
                    rows_of(batch.dead_letters),
                )
            await self._store_offsets(conn, batch)
        return AppliedBatch(
            readings_inserted=inserted, skipped=plan.skipped, new_alerts=tuple(new_alerts)
        )

    @staticmethod
    async def _stored_offsets(
        conn: AsyncConnection, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        t = consumer_offsets
        rows = await conn.execute(
            sa.select(t.c.topic, t.c.partition, t.c.next_offset).where(
                t.c.group_id == group_id,
                sa.tuple_(t.c.topic, t.c.partition).in_(
                    [(p.topic, p.partition) for p in partitions]
                ),
            )
        )
        return {TopicPartition(topic, partition): offset for topic, partition, offset in rows}

    @staticmethod
    async def _insert_readings(conn: AsyncConnection, plan: BatchPlan) -> int:
        if not plan.fresh:
            return 0
        rows = [
            {
                "sensor_id": p.reading.sensor_id,
                "time": p.reading.timestamp,
                "sensor_type": p.reading.sensor_type,
                "value": p.reading.value,
                "unit": p.reading.unit,
                "location": p.reading.location,
                "battery_level": p.reading.battery_level,
                "signal_strength": p.reading.signal_strength,
                "source_topic": p.source.topic,
                "source_partition": p.source.partition,
                "source_offset": p.offset,
            }
            for p in plan.fresh
        ]
        result = await conn.execute(sqlite_insert(readings).on_conflict_do_nothing(), rows)
        # sqlite3 sums rowcount over an executemany; rows left out by DO NOTHING count 0.
        return int(result.rowcount)

    @staticmethod
    async def _recompute_aggregates(
        conn: AsyncConnection, windows: Sequence[tuple[str, datetime]]
    ) -> None:
        r = readings
        found: list[Reading] = []
        for chunk_start in range(0, len(windows), _WINDOWS_PER_QUERY):
            chunk = windows[chunk_start : chunk_start + _WINDOWS_PER_QUERY]
            condition = sa.or_(
                *(
                    sa.and_(r.c.sensor_id == sid, r.c.time >= start, r.c.time < start + WINDOW)
                    for sid, start in chunk
                )
            )
            query = sa.select(
                r.c.sensor_id, r.c.sensor_type, r.c.value, r.c.unit, r.c.time, r.c.location
            ).where(condition)
            found.extend(
                Reading(sensor_id=sid, sensor_type=st, value=v, unit=u, timestamp=ts, location=loc)
                for sid, st, v, u, ts, loc in await conn.execute(query)
            )
        if not found:
            return
        rows: list[dict[str, Any]] = [
            {
                "sensor_id": w.sensor_id,
                "window_start": w.window_start,
                "window_end": w.window_end,
                "sensor_type": w.sensor_type,
                "count": w.count,
                "min": w.min,
                "max": w.max,
                "mean": w.mean,
                "stddev": w.stddev,
                "m2": w.stddev * w.stddev * w.count,
            }
            for w in aggregate_window(found, size=WINDOW)
        ]
        upsert = sqlite_insert(reading_aggregates_1m)
        changed: dict[str, Any] = {
            k: upsert.excluded[k] for k in rows[0] if k not in ("sensor_id", "window_start")
        }
        changed["updated_at"] = sa.func.current_timestamp()
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["sensor_id", "window_start"], set_=changed
            ),
            rows,
        )

    @staticmethod
    async def _insert_alerts(conn: AsyncConnection, plan: BatchPlan) -> list[Any]:
        if not plan.alerts:
            return []
        existing = set(
            await conn.scalars(
                sa.select(alerts.c.alert_id).where(
                    alerts.c.alert_id.in_([a.alert_id for a in plan.alerts])
                )
            )
        )
        new = [a for a in plan.alerts if a.alert_id not in existing]
        if new:
            await conn.execute(
                sa.insert(alerts),
                [
                    {
                        "alert_id": a.alert_id,
                        "source": a.source,
                        "kind": a.kind.value,
                        "severity": a.severity.value,
                        "message": a.message,
                        "time": a.timestamp,
                        "sensor_type": a.sensor_type,
                        "value": a.value,
                        "threshold": a.threshold,
                    }
                    for a in new
                ],
            )
        return new

    @staticmethod
    async def _store_offsets(conn: AsyncConnection, batch: SensorBatch) -> None:
        if not batch.next_offsets:
            return
        upsert = sqlite_insert(consumer_offsets)
        t = consumer_offsets
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["group_id", "topic", "partition"],
                set_={
                    # SQLite's two-argument max() is GREATEST: an offset never moves back.
                    "next_offset": sa.func.max(t.c.next_offset, upsert.excluded.next_offset),
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
                for tp, offset in batch.next_offsets.items()
            ],
        )
