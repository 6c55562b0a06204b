"""`pipeline bench sensors --embedded`: the sensors worker on the embedded default — the
in-memory log and registry and a SQLite file, as `pipeline demo` runs it — with no service.
A benchmark that prints figures, not a test.

With `--rate 0` the readings are published first and the worker then drains them: its
throughput alone (wall clock, and per CPU second of this process, which runs everything on
one core at most). With a fixed rate the generator and the worker run together as in the
demo, and the consumer lag is printed every 5 s: a rate the pipeline keeps up with shows a
lag that stays bounded. Latency per reading is from its publication to the commit of the
batch that stored it; peak RSS is this process's (generator included)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path

from pydantic import SecretStr

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.application.lag import consumer_lag
from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.bench import percentile
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.runtime import EXIT_OK, EXIT_USAGE, tune_gc_for_streaming
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job

LAG_EVERY_S = 5.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} {five:.2f}"


async def _embedded(settings: Settings, directory: Path) -> Pipeline:
    url = SecretStr(f"sqlite+aiosqlite:///{directory / 'bench.db'}")
    database = settings.database.model_copy(update={"url": url})
    return await bootstrap(
        settings.model_copy(update={"database": database}),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        migrate=True,
    )


async def run_embedded_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Publish `args.events` generated readings (at `args.rate`, 0: all first) and run the
    sensors worker until it has stored them; print the figures."""
    if (
        args.domain != "sensors"
        or args.floor is not None
        or args.ml
        or args.metrics_port is not None
        or args.rates
    ):
        sys.stderr.write(
            "pipeline bench: error: --embedded benchmarks `sensors` alone, without --floor, "
            "--rates, --ml or --metrics-port\n"
        )
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as directory:
        pipeline = await _embedded(settings, Path(directory))
        try:
            print(f"pipeline bench sensors --embedded: before, {_load()}")
            return await _measure(args, pipeline)
        finally:
            await pipeline.aclose()


async def _measure(args: argparse.Namespace, pipeline: Pipeline) -> int:
    stats = WorkerStats(latencies_ms=array("d"))
    stop = asyncio.Event()
    group = pipeline.group_id("sensors")
    topic = pipeline.settings.topics.sensor_readings
    produced: list[int] = []
    first: list[tuple[float, float]] = []
    lags: list[int] = []

    def on_batch(current: WorkerStats) -> None:
        if not first:
            first.append((time.monotonic(), _cpu()))
        if produced and current.records >= produced[0]:
            stop.set()

    async def produce() -> None:
        count = await produce_sensors(
            pipeline, count=args.events, rate=args.rate, seed=42, sensors=args.sensors
        )
        produced.append(count)
        if stats.records >= count:  # the worker was done before the generator returned
            stop.set()

    async def watch_lag() -> None:
        started = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LAG_EVERY_S)
            lag = await consumer_lag(pipeline.log, pipeline.checkpoint, topic, group)
            lags.append(lag)
            print(
                f"  {time.monotonic() - started:5.0f} s  lag {lag:>8,}  stored {stats.records:>9,}"
            )

    await pipeline.ensure_topics()
    tune_gc_for_streaming()  # as pipeline-worker does
    if args.rate == 0:
        await produce()
    worker = run_named_job(pipeline, "sensors", group_id=group, stop=stop, stats=stats,
                           on_batch=on_batch)  # fmt: skip
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(worker)
        if args.rate > 0:
            tasks.create_task(produce())
            tasks.create_task(watch_lag())
    finished, cpu = time.monotonic(), _cpu()
    started, cpu_started = first[0] if first else (finished, cpu)
    _report(args, stats, seconds=finished - started, cpu=cpu - cpu_started, lags=lags)
    return EXIT_OK


def _report(
    args: argparse.Namespace, stats: WorkerStats, *, seconds: float, cpu: float, lags: list[int]
) -> None:
    latencies = array("d", sorted(stats.latencies_ms or ()))
    rate = "max (published first, then drained)" if args.rate == 0 else f"{args.rate:g}/s"
    kind = "backlog age + processing" if args.rate == 0 else "processing"
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"pipeline bench sensors --embedded: {stats.records:,} readings, rate {rate}, "
        f"{args.sensors} sensors, in-memory log → sensors worker → SQLite\n"
        f"  machine: {_load()}\n"
        f"  worker: {stats.written['readings']:,} rows inserted, {stats.events} alerts, "
        f"{sum(stats.rejected.values())} rejected, {stats.batches} batches\n"
        f"  throughput: {stats.records / seconds:,.0f} readings/s (first batch → last commit)\n"
        f"  CPU: {cpu:.1f} s in this process, {stats.records / cpu:,.0f} readings per CPU "
        "second\n"
        f"  latency published → committed ({kind}): p50 {percentile(latencies, 0.50):,.0f} ms, "
        f"p95 {percentile(latencies, 0.95):,.0f} ms, p99 {percentile(latencies, 0.99):,.0f} ms\n"
        f"  peak RSS: {peak_rss_mb:.0f} MiB (generator included)"
    )
    if lags:
        print(
            f"  consumer lag every {LAG_EVERY_S:g} s: median {statistics.median(lags):,.0f}, "
            f"max {max(lags):,}, last {lags[-1]:,}"
        )
