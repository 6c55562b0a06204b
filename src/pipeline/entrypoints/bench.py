"""`pipeline bench sensors --events N`: throughput, end-to-end latency and memory of one sensors
worker on the real stack. A benchmark that prints figures, not a test.

The producer runs as a separate process (`pipeline produce sensors`) into a fresh topic; the
worker runs in this process, so its peak RSS is this process's. Latency per record is the time
from the record's producer timestamp to the commit of the batch that stored it.

With `--rate 0` the N readings are produced first and the worker then drains the backlog: the
throughput is the worker's alone, and the latency mostly the backlog's age. With a fixed rate
the worker runs while the producer publishes: the latency is the pipeline's own."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from array import array

from pipeline.application.worker import WorkerStats
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from pipeline.entrypoints.sensors import run_sensor_worker
from pipeline.entrypoints.settings import Settings


def percentile(sorted_values: array[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie (nearest rank)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Produce `args.events` readings and run the sensors worker until it has stored them."""
    if settings.kafka.bootstrap_servers is None or settings.database.is_default:
        sys.stderr.write(
            "pipeline bench: error: needs real Kafka and PostgreSQL; set "
            "PIPELINE_KAFKA__BOOTSTRAP_SERVERS and PIPELINE_DATABASE__URL "
            "(eval \"$(scripts/stack env)\")\n"
        )
        return EXIT_USAGE
    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-sensor-readings-{run_id}"
    topics = settings.topics.model_copy(update={"sensor_readings": topic})
    settings = settings.model_copy(update={"topics": topics})
    pipeline = await bootstrap(settings, migrate=True)
    await pipeline.ensure_topics()
    group = f"bench-sensors-{run_id}"
    stats = WorkerStats(latencies_ms=array("d"))
    stop = asyncio.Event()
    first_batch: list[float] = []

    def on_batch(current: WorkerStats) -> None:
        if not first_batch:
            first_batch.append(time.monotonic())
        if current.records >= args.events:
            stop.set()

    env = {**os.environ, "PIPELINE_TOPICS__SENSOR_READINGS": topic, "PIPELINE_LOG_LEVEL": "WARNING"}
    producer_cmd = [
        sys.executable, "-m", "pipeline.entrypoints.cli", "produce", "sensors",
        "--count", str(args.events), "--rate", str(args.rate),
        "--sensors", str(args.sensors), "--seed", str(int(run_id, 16)),
    ]
    started = time.monotonic()
    producer = await asyncio.create_subprocess_exec(
        *producer_cmd, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        if args.rate == 0:
            # As fast as possible: the backlog is produced first, then drained, so the
            # worker's throughput is measured without the producer competing for the CPUs.
            _, producer_err = await producer.communicate()
            if producer.returncode != 0:
                sys.stderr.write(producer_err.decode(errors="replace"))
                return EXIT_FAILURE
        worker = asyncio.create_task(
            run_sensor_worker(pipeline, group_id=group, stop=stop, stats=stats, on_batch=on_batch)
        )
        _, producer_err = await producer.communicate()
        produced_at = time.monotonic()
        if producer.returncode != 0:
            stop.set()
            await worker
            sys.stderr.write(producer_err.decode(errors="replace"))
            return EXIT_FAILURE
        await worker
        finished = time.monotonic()
    finally:
        await pipeline.aclose()
    latencies = array("d", sorted(stats.latencies_ms or ()))
    worker_time = finished - (first_batch[0] if first_batch else started)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    producer_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    load1, load5, _ = os.getloadavg()
    print(f"pipeline bench sensors: {args.events} readings, producer rate "
          f"{'max' if args.rate == 0 else f'{args.rate:g}/s'}, {args.sensors} sensors, "
          f"topic {topic} ({settings.topics.sensor_readings_partitions} partitions)")
    print(f"  machine: {os.cpu_count()} cores, load average {load1:.2f} {load5:.2f}")
    print(f"  producer: {args.events / (produced_at - started):,.0f} readings/s "
          f"(peak RSS {producer_rss_mb:.0f} MiB)")
    print(f"  worker: {stats.records:,} records, {stats.readings_inserted:,} rows inserted, "
          f"{stats.alerts} alerts, {sum(stats.rejected.values())} rejected, "
          f"{stats.batches} batches")
    print(f"  throughput: {stats.records / worker_time:,.0f} readings/s through the worker "
          f"(first batch → last commit), {stats.records / (finished - started):,.0f}/s "
          "end to end (producer start → last commit)")
    kind = "backlog age + processing" if args.rate == 0 else "processing"
    print(f"  latency produced → committed ({kind}): p50 {percentile(latencies, 0.50):,.0f} ms, "
          f"p95 {percentile(latencies, 0.95):,.0f} ms, p99 {percentile(latencies, 0.99):,.0f} ms")
    print(f"  worker peak RSS: {peak_rss_mb:.0f} MiB")
    return EXIT_OK
