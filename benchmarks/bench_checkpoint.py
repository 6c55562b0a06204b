"""Throughput of the PostgreSQL checkpoint store on the sensors job's batches: a benchmark,
not a test.

    eval "$(scripts/stack env)"
    uv run python -m benchmarks.bench_checkpoint --batches 20 --batch-size 10000

It runs in a throwaway database (created, migrated by Alembic, dropped). A batch holds
`--batch-size` readings from `--sensors` sensors at one
reading per sensor per second over `--partitions` partitions; about 2 % raise an alert.

- checkpoint: `PostgresCheckpointStore.commit` of the readings, one aggregate row per
  (sensor, one-minute window) the batch touched — the window's statistics so far, as a
  window step emitting every update sends them —, one state change per such window (its
  pickled accumulator; a delete for a window the sensor has left), the alerts, and the
  offsets. The engine's work computing aggregates and state is done before timing: this
  measures the store.

Prints readings/s and rows/s (every row written), with the median batch time. The whole
worker, old against new, is compared with `pipeline bench sensors` (see the README).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.databases import fresh_database

from pipeline.adapters.sql import create_engine
from pipeline.adapters.sql.postgres_checkpoint import PostgresCheckpointStore
from pipeline.adapters.sql.postgres_sinks import postgres_sensor_sinks
from pipeline.application.ports import Record, TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkRows
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, check_thresholds
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate
from pipeline.streams.aggregates import RunningStats
from pipeline.streams.state import StateChange, dumps

TOPIC = "sensor-readings"
STEP = "window-1m"


@dataclass
class Batches:
    """The readings as checkpoint batches."""

    checkpoint: list[CheckpointBatch] = field(default_factory=list)
    readings: int = 0

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
        readings, parts, origins, alerts = [], [], [], []
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
                if alert is not None:
                    alerts.append(alert)
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
        aggregates: list[WindowAggregate] = []
        state: list[StateChange] = []
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
            state.append(StateChange(STEP, part, dumps((sensor_id, minute)), dumps(stats)))
        for sensor_id, minute in closed:
            part = int(sensor_id[-5:]) % partitions
            state.append(StateChange(STEP, part, dumps((sensor_id, minute)), None))
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
        out.readings += len(readings)
    return out


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def bench(args: argparse.Namespace) -> None:
    batches = make_batches(args.batches, args.batch_size, args.sensors, args.partitions)
    spent: list[float] = []
    async with fresh_database("bench_ckpt") as url:
        # Two connections: the commits' and the state log's folds in the background.
        checkpoint = PostgresCheckpointStore(
            create_engine(url, pool_size=2, max_overflow=0), postgres_sensor_sinks()
        )
        try:
            for batch in batches.checkpoint:
                spent.append(await _timed(lambda b=batch: checkpoint.commit(b)))  # type: ignore[misc]
        finally:
            await checkpoint.close()
            await checkpoint.engine.dispose()
    windows = statistics.mean(len(b.writes[1].rows) for b in batches.checkpoint)
    changes = statistics.mean(len(b.state) for b in batches.checkpoint)
    rows = sum(batches.rows(i) for i in range(len(batches.checkpoint)))
    total = sum(spent)
    print(
        f"{batches.readings:,} readings in {args.batches} batches of {args.batch_size:,} from "
        f"{args.sensors:,} sensors; per batch ~{windows:,.0f} aggregate rows, "
        f"~{changes:,.0f} state changes"
    )
    print(
        f"  checkpoint  {batches.readings / total:>9,.0f} readings/s   "
        f"({rows / total:,.0f} rows/s, every table)   "
        f"batch p50 {statistics.median(spent) * 1000:,.0f} ms, max {max(spent) * 1000:,.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--sensors", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=6)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
