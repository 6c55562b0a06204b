"""Throughput of SqlSensorStore.apply on the real PostgreSQL: a benchmark, not a test.

    eval "$(scripts/stack env)"
    uv run python -m benchmarks.sql_sensor_store --batches 40 --batch-size 5000

Runs in a throwaway database (created, migrated by Alembic, dropped). Batches hold
`--batch-size` readings from `--sensors` sensors at one reading per sensor per second, so a
batch of 5,000 from 100 sensors spans 50 s of event time and touches 100-200 one-minute
windows, some of them already begun by the previous batch. About 2 % of readings raise an
alert. Prints wall-clock readings/s and the CPU seconds spent by this process and by the
PostgreSQL backend serving it (the two only add up on a loaded machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from tests.databases import fresh_database

from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.application.ports import ProjectedReading, SensorBatch, TopicPartition
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, check_thresholds
from pipeline.domain.sensors import Reading

TOPIC = "sensor-readings"


def make_batches(count: int, size: int, sensors: int, partitions: int) -> list[SensorBatch]:
    rng = random.Random(7)
    offsets = [0] * partitions
    at = datetime(2026, 1, 1, tzinfo=UTC)
    seconds = size // sensors
    batches = []
    for _ in range(count):
        readings = []
        for second in range(seconds):
            for s in range(sensors):
                p = s % partitions
                r = Reading(
                    sensor_id=f"sensor-{s:04d}",
                    sensor_type="temperature",
                    value=rng.gauss(25.0, 9.5),
                    unit="celsius",
                    timestamp=at + timedelta(seconds=second, microseconds=s),
                    location=f"site-{s % 10:02d}",
                    battery_level=80.0,
                    signal_strength=-60.0,
                )
                alert = check_thresholds(r, DEFAULT_THRESHOLDS)
                readings.append(
                    ProjectedReading(
                        source=TopicPartition(TOPIC, p),
                        offset=offsets[p],
                        reading=r,
                        alerts=(alert,) if alert else (),
                    )
                )
                offsets[p] += 1
        at += timedelta(seconds=seconds)
        batches.append(
            SensorBatch(
                group_id="bench",
                readings=readings,
                next_offsets={TopicPartition(TOPIC, p): offsets[p] for p in range(partitions)},
            )
        )
    return batches


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a local process (the PostgreSQL backend), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(args: argparse.Namespace) -> None:
    batches = make_batches(args.batches, args.batch_size, args.sensors, args.partitions)
    async with fresh_database("bench") as url:
        store = SqlSensorStore(create_engine(url, pool_size=1, max_overflow=0))
        try:
            async with store.engine.connect() as conn:
                backend = int(await conn.scalar(sa.text("SELECT pg_backend_pid()")) or 0)
            latencies = []
            inserted = 0
            server0, client0 = process_cpu_seconds(backend), time.process_time()
            started = time.perf_counter()
            for batch in batches:
                t = time.perf_counter()
                inserted += (await store.apply(batch)).readings_inserted
                latencies.append(time.perf_counter() - t)
            elapsed = time.perf_counter() - started
            client = time.process_time() - client0
            server = process_cpu_seconds(backend) - server0
        finally:
            await store.close()
    windows = len(
        {
            (p.reading.sensor_id, p.reading.timestamp.replace(second=0, microsecond=0))
            for p in batches[-1].readings
        }
    )
    print(
        f"{inserted:,} readings in {len(batches)} batches of {args.batch_size:,} "
        f"({args.sensors} sensors, ~{windows} windows per batch)\n"
        f"  wall:  {inserted / elapsed:,.0f} readings/s; apply p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms\n"
        f"  cpu:   client {client:.2f} s, postgres backend {server:.2f} s "
        f"-> {inserted / (client + server):,.0f} readings per CPU-second"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=6)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
