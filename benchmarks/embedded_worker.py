"""What the embedded pipeline of `pipeline demo` sustains: a benchmark, not a test.

    uv run python -m benchmarks.embedded_worker drain --readings 100000
    uv run python -m benchmarks.embedded_worker soak --rate 1000 --duration 300

`drain` publishes the readings to the in-memory log first (the demo's fleet: 100 sensors,
anomaly rate 0.005), then times the sensors worker storing them into a fresh SQLite file:
the worker's own throughput, in wall-clock time and per CPU second of this process (the
demo runs in one process, so on one core at most). `soak` runs generator and worker together
as the demo does, at `--rate`, and prints the consumer lag every 10 s: a rate the demo keeps
up with shows a lag that stays flat. Both print the machine's load average, which the
figures depend on when other processes share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.application.lag import consumer_lag
from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.runtime import tune_gc_for_streaming
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import DatabaseSettings, Settings
from pipeline.entrypoints.worker import run_named_job

SENSORS = 100
ANOMALY_RATE = 0.005


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> str:
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min), {five:.2f} (5 min)"


async def embedded(directory: Path) -> Pipeline:
    url = SecretStr(f"sqlite+aiosqlite:///{directory / 'bench.db'}")
    settings = Settings(database=DatabaseSettings(url=url))
    return await bootstrap(
        settings, log=InMemoryEventLog(), registry=InMemorySchemaRegistry(), migrate=True
    )


async def drain(readings: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        pipeline = await embedded(Path(directory))
        try:
            await produce_sensors(
                pipeline,
                count=readings,
                rate=0,
                seed=42,
                sensors=SENSORS,
                anomaly_rate=ANOMALY_RATE,
            )
            tune_gc_for_streaming()
            print(f"before: {machine()}")
            cpu, wall = cpu_seconds(), time.monotonic()
            stats = await run_named_job(pipeline, "sensors", until_caught_up=True)
            cpu, wall = cpu_seconds() - cpu, time.monotonic() - wall
        finally:
            await pipeline.aclose()
    print(f"after:  {machine()}")
    print(
        f"embedded worker (in-memory log → SQLite): {stats.records:,} readings in {wall:.1f} s "
        f"= {stats.records / wall:,.0f} readings/s wall clock, "
        f"{stats.records / cpu:,.0f} readings per CPU second ({cpu:.1f} CPU s)"
    )


async def soak(rate: float, duration: float) -> None:
    with tempfile.TemporaryDirectory() as directory:
        pipeline = await embedded(Path(directory))
        tune_gc_for_streaming()
        stop = asyncio.Event()
        stats = WorkerStats()
        group = pipeline.group_id("sensors")
        print(f"before: {machine()}")
        print(f"demo pipeline at {rate:g} readings/s for {duration:g} s; lag every 10 s:")
        cpu = cpu_seconds()

        async def report() -> None:
            started = time.monotonic()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=10)
                topic = pipeline.settings.topics.sensor_readings
                lag = await consumer_lag(pipeline.log, pipeline.checkpoint, topic, group)
                elapsed = time.monotonic() - started
                print(f"  {elapsed:5.0f} s  lag {lag:>7,}  stored {stats.written['readings']:>9,}")

        async def deadline() -> None:
            await asyncio.sleep(duration)
            stop.set()

        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(
                    produce_sensors(
                        pipeline,
                        count=None,
                        rate=rate,
                        seed=42,
                        sensors=SENSORS,
                        anomaly_rate=ANOMALY_RATE,
                        stop=stop,
                    )
                )
                tasks.create_task(
                    run_named_job(pipeline, "sensors", group_id=group, stop=stop, stats=stats)
                )
                tasks.create_task(report())
                tasks.create_task(deadline())
        finally:
            await pipeline.aclose()
        cpu = cpu_seconds() - cpu
    print(f"after:  {machine()}")
    print(f"process CPU: {cpu / duration:.0%} of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    drain_mode = modes.add_parser("drain", help="time the worker storing a backlog")
    drain_mode.add_argument("--readings", type=int, default=100_000, help="backlog size")
    soak_mode = modes.add_parser("soak", help="run the demo pipeline and watch the lag")
    soak_mode.add_argument("--rate", type=float, default=1_000.0, help="readings per second")
    soak_mode.add_argument("--duration", type=float, default=300.0, help="seconds")
    args = parser.parse_args()
    if args.mode == "drain":
        asyncio.run(drain(args.readings))
    else:
        asyncio.run(soak(args.rate, args.duration))


if __name__ == "__main__":
    main()
