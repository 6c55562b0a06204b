"""Applying a sensor batch to PostgreSQL: set-based statements over asyncpg arrays.

Every table is written with one statement per batch, its rows passed as arrays and expanded
by `unnest` on the server. That keeps a 5,000-reading batch at a handful of round trips and
binary-encoded parameters, far cheaper than row-by-row `executemany`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pipeline.adapters.sql.batch import BatchPlan, partitions_of, plan_batch
from pipeline.adapters.sql.errors import is_transient
from pipeline.application.ports import AppliedBatch, SensorBatch, TopicPartition

# Rows are locked in a fixed order so that two appliers of one group cannot deadlock.
_LOCK_OFFSETS = """
SELECT o.topic, o."partition", o.next_offset
FROM consumer_offsets AS o
JOIN unnest($2::text[], $3::int4[]) AS p(topic, "partition")
  ON o.topic = p.topic AND o."partition" = p."partition"
WHERE o.group_id = $1
ORDER BY o.topic, o."partition"
FOR UPDATE OF o
"""

_INSERT_READINGS = """
INSERT INTO readings (sensor_id, "time", sensor_type, value, unit, location, battery_level,
                      signal_strength, source_topic, source_partition, source_offset)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::float8[], $5::text[],
                     $6::text[], $7::float8[], $8::float8[], $9::text[], $10::int4[],
                     $11::int8[])
ON CONFLICT (sensor_id, "time") DO NOTHING
"""

# Windows come from the client (the domain's window_start), not from date_trunc, whose
# result for timestamptz depends on the session time zone.
_RECOMPUTE_AGGREGATES = """
INSERT INTO reading_aggregates_1m AS a
    (sensor_id, window_start, window_end, sensor_type, count, min, max, mean, stddev,
     updated_at)
SELECT w.sensor_id, w.window_start, w.window_start + interval '1 minute', min(r.sensor_type),
       count(*), min(r.value), max(r.value), avg(r.value), stddev_pop(r.value), now()
FROM unnest($1::text[], $2::timestamptz[]) AS w(sensor_id, window_start)
JOIN readings AS r
  ON r.sensor_id = w.sensor_id
 AND r."time" >= w.window_start AND r."time" < w.window_start + interval '1 minute'
GROUP BY w.sensor_id, w.window_start
ON CONFLICT (sensor_id, window_start) DO UPDATE SET
    window_end = excluded.window_end, sensor_type = excluded.sensor_type,
    count = excluded.count, min = excluded.min, max = excluded.max, mean = excluded.mean,
    stddev = excluded.stddev, updated_at = excluded.updated_at
"""

_INSERT_ALERTS = """
INSERT INTO alerts (alert_id, source, kind, severity, message, "time", sensor_type, value,
                    threshold)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::text[], $8::float8[], $9::float8[])
ON CONFLICT (alert_id) DO NOTHING
RETURNING alert_id
"""

_STORE_OFFSETS = """
INSERT INTO consumer_offsets AS o (group_id, topic, "partition", next_offset, updated_at)
SELECT $1, p.topic, p."partition", p.next_offset, now()
FROM unnest($2::text[], $3::int4[], $4::int8[]) AS p(topic, "partition", next_offset)
ON CONFLICT (group_id, topic, "partition") DO UPDATE SET
    next_offset = GREATEST(o.next_offset, excluded.next_offset),
    updated_at = excluded.updated_at
"""


class PostgresBatchWriter:
    """Applies a SensorBatch through the asyncpg connection under a SQLAlchemy connection."""

    async def apply(self, conn: AsyncConnection, batch: SensorBatch) -> AppliedBatch:
        """Apply `batch` in one transaction of its own on `conn`."""
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        try:
            # The transaction is opened on asyncpg itself: SQLAlchemy would only BEGIN lazily
            # on its own first statement, and this path sends none through SQLAlchemy.
            async with driver.transaction():
                return await self._apply(driver, batch)
        except Exception as exc:
            if is_transient(exc) or driver.is_closed():
                # Do not hand a broken or half-aborted connection back to the pool.
                await conn.invalidate()
            raise

    async def _apply(self, driver: Any, batch: SensorBatch) -> AppliedBatch:
        partitions = partitions_of(batch)
        stored: dict[TopicPartition, int] = {}
        if partitions:
            rows = await driver.fetch(
                _LOCK_OFFSETS,
                batch.group_id,
                [tp.topic for tp in partitions],
                [tp.partition for tp in partitions],
            )
            stored = {TopicPartition(r[0], r[1]): r[2] for r in rows}
        plan = plan_batch(batch, stored)
        inserted = await self._insert_readings(driver, plan)
        if plan.windows:
            await driver.execute(
                _RECOMPUTE_AGGREGATES,
                [sensor_id for sensor_id, _ in plan.windows],
                [start for _, start in plan.windows],
            )
        new_alert_ids: set[object] = set()
        if plan.alerts:
            a = plan.alerts
            rows = await driver.fetch(
                _INSERT_ALERTS,
                [x.alert_id for x in a],
                [x.source for x in a],
                [x.kind.value for x in a],
                [x.severity.value for x in a],
                [x.message for x in a],
                [x.timestamp for x in a],
                [x.sensor_type for x in a],
                [x.value for x in a],
                [x.threshold for x in a],
            )
            new_alert_ids = {r[0] for r in rows}
        if batch.next_offsets:
            items = sorted(batch.next_offsets.items())
            await driver.execute(
                _STORE_OFFSETS,
                batch.group_id,
                [tp.topic for tp, _ in items],
                [tp.partition for tp, _ in items],
                [offset for _, offset in items],
            )
        return AppliedBatch(
            readings_inserted=inserted,
            skipped=plan.skipped,
            new_alerts=tuple(x for x in plan.alerts if x.alert_id in new_alert_ids),
        )

    @staticmethod
    async def _insert_readings(driver: Any, plan: BatchPlan) -> int:
        if not plan.fresh:
            return 0
        fresh = plan.fresh
        status: str = await driver.execute(
            _INSERT_READINGS,
            [p.reading.sensor_id for p in fresh],
            [p.reading.timestamp for p in fresh],
            [p.reading.sensor_type for p in fresh],
            [p.reading.value for p in fresh],
            [p.reading.unit for p in fresh],
            [p.reading.location for p in fresh],
            [p.reading.battery_level for p in fresh],
            [p.reading.signal_strength for p in fresh],
            [p.source.topic for p in fresh],
            [p.source.partition for p in fresh],
            [p.offset for p in fresh],
        )
        # The command tag of an INSERT is "INSERT 0 <rows inserted>".
        return int(status.rsplit(" ", 1)[-1])
