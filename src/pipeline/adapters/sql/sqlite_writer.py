"""Applying a sensor batch to SQLite, with SQLAlchemy Core.

As on PostgreSQL, only the readings really inserted (RETURNING skips those already stored)
are merged into their one-minute windows with the parallel-variance formula (Chan et al.,
the domain's `RunningStats.merge`): the work is proportional to the batch, not to the rows
already in its windows. SQLite has no population variance (nor, in every build, a square
root), so the merge runs in Python over the windows' stored count, mean, m2, min and max.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pipeline.adapters.sql.batch import WINDOW, BatchPlan, minute_of, partitions_of, plan_batch
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
from pipeline.domain.windows import RunningStats

# Two parameters per window; stays well under SQLite's limit on bound parameters.
_WINDOWS_PER_QUERY = 250

_Windows = dict[tuple[str, datetime], tuple[str, RunningStats]]


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
            await self._merge_aggregates(conn, inserted)
            new_alerts = await self._insert_alerts(conn, plan)
            if batch.dead_letters:
                await conn.execute(
                    sqlite_insert(dead_letters).on_conflict_do_nothing(),
                    rows_of(batch.dead_letters),
                )
            await self._store_offsets(conn, batch)
        return AppliedBatch(
            readings_inserted=sum(stats.count for _, stats in inserted.values()),
            skipped=plan.skipped,
            new_alerts=tuple(new_alerts),
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
    async def _insert_readings(conn: AsyncConnection, plan: BatchPlan) -> _Windows:
        """Insert the fresh readings; the statistics of those really inserted, by window."""
        if not plan.fresh:
            return {}
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
        r = readings
        result = await conn.execute(
            sqlite_insert(r)
            .on_conflict_do_nothing()
            .returning(r.c.sensor_id, r.c.sensor_type, r.c.time, r.c.value),
            rows,
        )
        windows: _Windows = {}
        for sensor_id, sensor_type, time, value in result:
            key = (sensor_id, minute_of(time))
            entry = windows.get(key)
            if entry is None:
                entry = windows[key] = (sensor_type, RunningStats())
            entry[1].add(value)
        return windows

    @staticmethod
    async def _merge_aggregates(conn: AsyncConnection, inserted: _Windows) -> None:
        """Merge the inserted readings' statistics into their stored windows."""
        if not inserted:
            return
        a = reading_aggregates_1m
        keys = sorted(inserted)
        stored: dict[tuple[str, datetime], RunningStats] = {}
        for chunk_start in range(0, len(keys), _WINDOWS_PER_QUERY):
            chunk = keys[chunk_start : chunk_start + _WINDOWS_PER_QUERY]
            query = sa.select(
                a.c.sensor_id, a.c.window_start, a.c.count, a.c.mean, a.c.m2, a.c.min, a.c.max
            ).where(sa.tuple_(a.c.sensor_id, a.c.window_start).in_(chunk))
            for sensor_id, start, count, mean, m2, low, high in await conn.execute(query):
                stored[(sensor_id, start)] = RunningStats(
                    count=count, mean=mean, m2=m2, min=low, max=high
                )
        rows: list[dict[str, Any]] = []
        for key in keys:
            sensor_type, fresh = inserted[key]
            merged = stored.get(key, RunningStats())
            merged.merge(fresh)
            rows.append(
                {
                    "sensor_id": key[0],
                    "window_start": key[1],
                    "window_end": key[1] + WINDOW,
                    "sensor_type": sensor_type,
                    "count": merged.count,
                    "min": merged.min,
                    "max": merged.max,
                    "mean": merged.mean,
                    "stddev": merged.stddev,
                    "m2": merged.m2,
                }
            )
        upsert = sqlite_insert(a)
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
