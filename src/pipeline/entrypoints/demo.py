"""`pipeline demo`: the generator and the sensors worker in one process, on the in-memory log
and registry and a SQLite file. No services, no Docker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid

from pydantic import SecretStr

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.application.ports import TopicPartition
from pipeline.application.worker import WorkerStats
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.progress import StatusLine
from pipeline.entrypoints.runtime import EXIT_OK, install_stop_handlers, tune_gc_for_streaming
from pipeline.entrypoints.sensors import produce_sensors, run_sensor_worker
from pipeline.entrypoints.settings import DatabaseSettings, Settings


def demo_settings(settings: Settings, db: str) -> Settings:
    """The demo's settings: a SQLite file unless a database is configured."""
    if not settings.database.is_default:
        return settings
    database = DatabaseSettings(url=SecretStr(f"sqlite+aiosqlite:///{db}"))
    return settings.model_copy(update={"database": database})


async def consumer_lag(pipeline: Pipeline, group: str) -> int:
    """Records of the readings topic that `group` has not yet made durable."""
    topic = pipeline.settings.topics.sensor_readings
    ends = await pipeline.log.end_offsets(topic)
    done = await pipeline.store.stored_offsets(
        group, [TopicPartition(topic, partition) for partition in ends]
    )
    return sum(
        end - done.get(TopicPartition(topic, partition), 0) for partition, end in ends.items()
    )


async def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run until Ctrl-C or `--duration`; print a summary."""
    settings = demo_settings(settings, args.db)
    stop = asyncio.Event()
    install_stop_handlers(stop)
    pipeline = await bootstrap(
        settings, log=InMemoryEventLog(), registry=InMemorySchemaRegistry(), migrate=True
    )
    tune_gc_for_streaming()
    # The in-memory log is new with every run while the SQLite file is kept: offsets stored
    # by an earlier run's group would point past this log's end.
    group = f"{pipeline.group_id('sensors')}-demo-{uuid.uuid4().hex[:8]}"
    stats = WorkerStats()
    status = StatusLine()
    started = time.monotonic()
    last = (started, 0)
    rows = await pipeline.store.count_readings()
    print(
        f"pipeline demo: {args.sensors} sensors at {args.rate:g} readings/s → in-memory log → "
        f"sensors worker → {settings.database.url.get_secret_value()}  (Ctrl-C stops)"
    )

    async def report() -> None:
        nonlocal last
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            now = time.monotonic()
            rate = (stats.records - last[1]) / (now - last[0]) if now > last[0] else 0.0
            last = (now, stats.records)
            lag = await consumer_lag(pipeline, group)
            status.update(
                f"{rate:8.0f} events/s | rows {rows + stats.readings_inserted:>9} | "
                f"alerts {stats.alerts:>5} | rejected {sum(stats.rejected.values()):>4} | "
                f"lag {lag:>6}"
            )

    async def deadline() -> None:
        if args.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.duration)
            stop.set()

    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                produce_sensors(
                    pipeline,
                    count=None,
                    rate=args.rate,
                    seed=args.seed,
                    sensors=args.sensors,
                    anomaly_rate=args.anomaly_rate,
                    stop=stop,
                )
            )
            tasks.create_task(run_sensor_worker(pipeline, group_id=group, stop=stop, stats=stats))
            tasks.create_task(report())
            tasks.create_task(deadline())
        elapsed = time.monotonic() - started
        total_rows = await pipeline.store.count_readings()
        alerts = len(await pipeline.store.alerts(limit=1_000_000))
    finally:
        await pipeline.aclose()
    status.done()
    print(
        f"demo summary: {stats.records} readings processed in {elapsed:.1f}s "
        f"({stats.records / elapsed if elapsed else 0:.0f}/s), {total_rows} rows stored, "
        f"{alerts} alerts stored, {sum(stats.rejected.values())} rejected"
    )
    return EXIT_OK
