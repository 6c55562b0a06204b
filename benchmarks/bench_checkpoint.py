"""Throughput of the PostgreSQL checkpoint store against SqlSensorStore.apply, on the same
readings: a benchmark, not a test.

    eval "$(scripts/stack env)"
    uv run python -m benchmarks.bench_checkpoint --batches 20 --batch-size 10000

Each side runs in a throwaway database of its own (created, migrated by Alembic, dropped),
and the two are driven alternately, batch by batch, so that a machine shared with others
slows both alike. A batch holds `--batch-size` readings from `--sensors` sensors at one
reading per sensor per second over `--partitions` partitions; about 2 % raise an alert.

- checkpoint: `PostgresCheckpointStore.commit` of the readings, one aggregate row per
  (sensor, one-minute window) the batch touched — the window's statistics so far, as a
  window step emitting every update sends them —, one state change per such window (its
  pickled key and accumulator, as the engine's window step keeps them; a delete for a
  window the sensor has left), the alerts, and the
  offsets. The engine's work computing aggregates and state is done before timing: this
  measures the store.
- apply: today's `SqlSensorStore.apply` of the same readings and alerts, which merges the
  aggregates in SQL from the rows it inserts.

Prints readings/s of each (and rows/s: every row the checkpoint writes), the median batch
time, and the CPU seconds spent by this process and by the PostgreSQL backend serving each
side: on a machine others load, CPU seconds vary less than wall-clock time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.databases import fresh_database

from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.adapters.sql.postgres_checkpoint import PostgresCheckpointStore
from pipeline.adapters.sql.postgres_sinks import postgres_sensor_sinks
from pipeline.application.ports import ProjectedReading, Record, SensorBatch, TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkRows
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, check_thresholds
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate
from pipeline.streams.aggregates import RunningStats
from pipeline.streams.items import to_millis
from pipeline.streams.state import StateChange, dumps

TOPIC = "sensor-readings"
STEP = "window-1m"


@dataclass
class Batches:
    """The same readings as checkpoint batches and as sensor batches."""

    checkpoint: list[CheckpointBatch] = field(default_factory=list)
    apply: list[SensorBatch] = field(default_factory=list)

    def rows(self, i: int) -> int:
        """Every row checkpoint batch `i` writes (readings, aggregates, alerts, state)."""
        b = self.checkpoint[i]
        return sum(len(w.rows) for w in b.writes) + len(b.state)


def make_batches(count: int, size: int, sensors: int, partitions: int) -> Batches:
    rng = random.Random(7)
    offsets = [0] * partitions
    at = datetime(2026, 1, 1, tzinfo=UTC)
    seconds = size // sensors
    # Per sensor: its open window's start and statistics, as a window step keeps them.
    open_windows: dict[str, tuple[datetime, RunningStats]] = {}
    out = Batches()
    for _ in range(count):
        starts = list(offsets)
        projected: list[ProjectedReading] = []
        readings, parts, origins = [], [], []
        touched: dict[str, datetime] = {}
        closed: list[tuple[str, datetime]] = []
        for second in range(seconds):
            for s in range(sensors):
                p = s % partitions
                r = Reading(
                    sensor_id=f"sensor-{s:05d}",
                    sensor_type="temperature",
                    value=rng.gauss(25.0, 9.5),
                    unit="celsius",
                    timestamp=at + timedelta(seconds=second, microseconds=s),
                    location=f"site-{s % 10:02d}",
                    battery_level=80.0,
                    signal_strength=-60.0,
                )
                alert = check_thresholds(r, DEFAULT_THRESHOLDS)
                projected.append(
                    ProjectedReading(
                        source=TopicPartition(TOPIC, p),
                        offset=offsets[p],
                        reading=r,
                        alerts=(alert,) if alert else (),
                    )
                )
                readings.append(r)
                parts.append(p)
                origins.append(
                    Record(
                        topic=TOPIC,
                        partition=p,
                        offset=offsets[p],
                        key=None,
                        value=None,
                        timestamp_ms=0,
                    )
                )
                offsets[p] += 1
                minute = r.timestamp.replace(second=0, microsecond=0)
                current = open_windows.get(r.sensor_id)
                if current is None or current[0] != minute:
                    if current is not None:
                        closed.append((r.sensor_id, current[0]))
                    current = open_windows[r.sensor_id] = (minute, RunningStats())
                current[1].add(r.value)
                touched[r.sensor_id] = minute
        at += timedelta(seconds=seconds)
        aggregates, state = [], []
        for sensor_id, minute in touched.items():
            stats = open_windows[sensor_id][1]
            aggregates.append(
                WindowAggregate(
                    sensor_id=sensor_id,
                    sensor_type="temperature",
                    window_start=minute,
                    window_end=minute + timedelta(minutes=1),
                    count=stats.count,
                    min=stats.min,
                    max=stats.max,
                    mean=stats.mean,
                    stddev=stats.stddev,
                )
            )
            part = int(sensor_id[-5:]) % partitions
            state.append(
                StateChange(STEP, part, dumps((sensor_id, to_millis(minute))), dumps(stats))
            )
        for sensor_id, minute in closed:
            part = int(sensor_id[-5:]) % partitions
            state.append(StateChange(STEP, part, dumps((sensor_id, to_millis(minute))), None))
        alerts = [a for p in projected for a in p.alerts]
        window_parts = [int(w.sensor_id[-5:]) % partitions for w in aggregates]
        tps = [TopicPartition(TOPIC, p) for p in range(partitions)]
        out.checkpoint.append(
            CheckpointBatch(
                group_id="bench",
                start_offsets=dict(zip(tps, starts, strict=True)),
                next_offsets=dict(zip(tps, offsets, strict=True)),
                writes=[
                    SinkRows(sink="readings", rows=readings, parts=parts, origins=origins),
                    SinkRows(
                        sink="aggregates_1m",
                        rows=aggregates,
                        parts=window_parts,
                        origins=[None] * len(aggregates),
                    ),
                    SinkRows(
                        sink="alerts",
                        rows=alerts,
                        parts=[int(a.source[-5:]) % partitions for a in alerts],
                        origins=[None] * len(alerts),
                    ),
                ],
                state=state,
            )
        )
        out.apply.append(
            SensorBatch(
                group_id="bench",
                readings=projected,
                next_offsets=dict(zip(tps, offsets, strict=True)),
            )
        )
    return out


@dataclass
class Spent:
    """Wall-clock seconds per batch, and CPU seconds of this process and of the PostgreSQL
    backend serving it."""

    wall: list[float] = field(default_factory=list)
    client: float = 0.0
    server: float = 0.0


def backend_cpu_seconds(pid: int) -> float:
    """utime + stime of a local process (the PostgreSQL backend), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT pg_backend_pid()")) or 0)


async def _timed(call: Callable[[], Awaitable[object]], pid: int, spent: Spent) -> None:
    server, client, started = backend_cpu_seconds(pid), time.process_time(), time.perf_counter()
    await call()
    spent.wall.append(time.perf_counter() - started)
    spent.client += time.process_time() - client
    spent.server += backend_cpu_seconds(pid) - server


async def bench(args: argparse.Namespace) -> None:
    batches = make_batches(args.batches, args.batch_size, args.sensors, args.partitions)
    spent = {"checkpoint": Spent(), "apply": Spent()}
    async with fresh_database("bench_ckpt") as url_a, fresh_database("bench_apply") as url_b:
        # One pooled connection each, so that one backend serves every batch.
        checkpoint = PostgresCheckpointStore(
            create_engine(url_a, pool_size=1, max_overflow=0), postgres_sensor_sinks()
        )
        sensors = SqlSensorStore(create_engine(url_b, pool_size=1, max_overflow=0))
        try:
            pids = {
                "checkpoint": await backend_pid(checkpoint.engine),
                "apply": await backend_pid(sensors.engine),
            }
            for i, (ckpt, applied) in enumerate(
                zip(batches.checkpoint, batches.apply, strict=True)
            ):
                one = lambda b=ckpt: checkpoint.commit(b)  # noqa: E731
                other = lambda b=applied: sensors.apply(b)  # noqa: E731
                # Alternate which goes first, so neither always finds a cooler cache.
                order = [("checkpoint", one), ("apply", other)]
                for name, call in order if i % 2 == 0 else reversed(order):
                    await _timed(call, pids[name], spent[name])
            stored = await sensors.count_readings()
        finally:
            await checkpoint.engine.dispose()
            await sensors.close()
    readings = sum(len(b.readings) for b in batches.apply)
    windows = statistics.mean(len(b.writes[1].rows) for b in batches.checkpoint)
    changes = statistics.mean(len(b.state) for b in batches.checkpoint)
    rows = sum(batches.rows(i) for i in range(len(batches.checkpoint)))
    print(
        f"{readings:,} readings ({stored:,} stored) in {args.batches} batches of "
        f"{args.batch_size:,} from {args.sensors:,} sensors; per checkpoint batch "
        f"~{windows:,.0f} aggregate rows, ~{changes:,.0f} state changes"
    )
    for name, s in spent.items():
        total = sum(s.wall)
        cpu = s.client + s.server
        line = (
            f"  {name:<10}  {readings / total:>7,.0f} readings/s   "
            f"batch p50 {statistics.median(s.wall) * 1000:,.0f} ms   "
            f"cpu: client {s.client:.1f} s + postgres {s.server:.1f} s "
            f"= {readings / cpu:,.0f} readings per CPU-second"
        )
        if name == "checkpoint":
            line += f"   ({rows / total:,.0f} rows/s, every table)"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--sensors", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=6)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
