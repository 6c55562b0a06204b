"""`pipeline bench shop --events N`: throughput of one shop worker into PostgreSQL on the real
stack. A benchmark that prints figures, not a test.

`pipeline produce shop --rate 0` (a separate process) first writes N generated shop events
to a fresh topic; the shop job then drains that backlog in this process as a fresh consumer
group, and the figures are the worker's alone: events per second from its first batch to the
commit of the batch holding the N-th event, CPU seconds, rows written per table."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid

from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, tune_gc_for_streaming
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job


async def _produce(events: int, topic: str, seed: int) -> bool:
    env = {
        **os.environ,
        "PIPELINE_TOPICS__ECOMMERCE_EVENTS": topic,
        "PIPELINE_LOG_LEVEL": "WARNING",
    }
    producer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline.entrypoints.cli", "produce", "shop",
        "--count", str(events), "--rate", "0", "--seed", str(seed),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await producer.communicate()
    if producer.returncode != 0:
        sys.stderr.write(err.decode(errors="replace"))
        return False
    return True


async def run_shop_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Produce `args.events` shop events, then run the shop job until it has handled them."""
    if settings.kafka.bootstrap_servers is None or settings.database.is_default:
        sys.stderr.write(
            "pipeline bench: error: needs real Kafka and PostgreSQL; set "
            "PIPELINE_KAFKA__BOOTSTRAP_SERVERS and PIPELINE_DATABASE__URL "
            '(eval "$(scripts/stack env)")\n'
        )
        return EXIT_USAGE
    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-shop-events-{run_id}"
    settings = settings.model_copy(
        update={"topics": settings.topics.model_copy(update={"ecommerce_events": topic})}
    )
    pipeline = await bootstrap(settings, migrate=True)
    tune_gc_for_streaming()  # as pipeline-worker does
    stats = WorkerStats()
    stop = asyncio.Event()
    first: list[tuple[float, float]] = []

    def on_batch(current: WorkerStats) -> None:
        if not first:
            first.append((time.monotonic(), time.process_time()))
        if current.records >= args.events:
            stop.set()

    try:
        await pipeline.ensure_topics()
        started = time.monotonic()
        if not await _produce(args.events, topic, seed=int(run_id, 16)):
            return EXIT_FAILURE
        produced = time.monotonic()
        await run_named_job(
            pipeline, "shop", group_id=f"bench-shop-{run_id}", stop=stop, stats=stats,
            on_batch=on_batch,
        )  # fmt: skip
        finished, cpu_end = time.monotonic(), time.process_time()
    finally:
        await pipeline.aclose()
    begun, cpu_start = first[0] if first else (finished, cpu_end)
    worker_time = max(finished - begun, 1e-9)
    cpu = max(cpu_end - cpu_start, 1e-9)
    load1, load5, _ = os.getloadavg()
    rows = ", ".join(f"{sink} {n:,}" for sink, n in sorted(stats.written.items()))
    print(
        f"pipeline bench shop: {args.events:,} events, topic {topic} "
        f"({settings.topics.default_partitions} partitions)\n"
        f"  machine: {os.cpu_count()} cores, load average {load1:.2f} {load5:.2f}\n"
        f"  producer: {args.events / (produced - started):,.0f} events/s including its "
        "process start-up\n"
        f"  worker: {stats.records:,} records, {sum(stats.rejected.values())} rejected, "
        f"{stats.batches} batches; rows written: {rows or 'none'}; {stats.events} alerts\n"
        f"  throughput: {stats.records / worker_time:,.0f} events/s into PostgreSQL (first "
        "batch → last commit)\n"
        f"  CPU: {cpu:.1f} s, {stats.records / cpu:,.0f} events per CPU second\n"
        f"  worker peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    return EXIT_OK
