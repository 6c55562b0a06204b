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
import contextlib
import os
import resource
import sys
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry
from pipeline.adapters.telemetry.server import serving_metrics
from pipeline.application.runtime.stats import WorkerStats
from pipeline.domain import DEFAULT_CATALOG
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, tune_gc_for_streaming
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job, with_metrics_port
from pipeline.jobs.sensor_anomalies import feature_names


def percentile(sorted_values: array[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie (nearest rank)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchRun:
    """What one benchmark run measured (monotonic seconds)."""

    started: float
    produced: float
    first_batch: float
    finished: float
    cpu_seconds: float
    """CPU time of this process (every thread) from the first batch to the last commit."""
    stats: WorkerStats


def print_report(args: argparse.Namespace, settings: Settings, run: BenchRun) -> None:
    """The benchmark's figures, with the machine state they were taken in."""
    stats = run.stats
    latencies = array("d", sorted(stats.latencies_ms or ()))
    worker_time = run.finished - run.first_batch
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    producer_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    load1, load5, _ = os.getloadavg()
    rate = "max" if args.rate == 0 else f"{args.rate:g}/s"
    kind = "backlog age + processing" if args.rate == 0 else "processing"
    print(
        f"pipeline bench sensors: {args.events} readings, producer rate {rate}, "
        f"{args.sensors} sensors, topic {settings.topics.sensor_readings} "
        f"({settings.topics.sensor_readings_partitions} partitions), metrics "
        f"{'on' if settings.metrics.port is not None else 'off'}, anomaly scoring "
        f"{settings.anomaly.model if settings.anomaly.enabled else 'off'}\n"
        f"  machine: {os.cpu_count()} cores, load average {load1:.2f} {load5:.2f}\n"
        f"  producer: {args.events / (run.produced - run.started):,.0f} readings/s "
        f"including its process start-up (peak RSS {producer_rss_mb:.0f} MiB)\n"
        f"  worker: {stats.records:,} records, {stats.written['readings']:,} rows inserted, "
        f"{stats.events} alerts, {sum(stats.rejected.values())} rejected, "
        f"{stats.batches} batches\n"
        f"  throughput: {stats.records / worker_time:,.0f} readings/s through the worker "
        f"(first batch → last commit), {stats.records / (run.finished - run.started):,.0f}/s "
        "end to end (producer start → last commit)\n"
        f"  CPU: {run.cpu_seconds:.1f} s in the worker's process, "
        f"{stats.records / run.cpu_seconds:,.0f} readings per CPU second\n"
        f"  latency produced → committed ({kind}): p50 {percentile(latencies, 0.50):,.0f} ms, "
        f"p95 {percentile(latencies, 0.95):,.0f} ms, p99 {percentile(latencies, 0.99):,.0f} ms\n"
        f"  worker peak RSS: {peak_rss_mb:.0f} MiB"
    )


async def with_forest(settings: Settings, directory: Path) -> Settings:
    """Settings scoring with an Isolation Forest (retraining on, in a model store in
    `directory`), the forest fitted first on 20,000 generated readings of 100 sensors."""
    from pipeline.adapters.model import FilesystemModelStore, trainer_for  # noqa: PLC0415
    from pipeline.application.ports.model import ModelInfo  # noqa: PLC0415
    from pipeline.entrypoints import evaluate_sensors  # noqa: PLC0415

    anomaly = settings.anomaly.model_copy(
        update={"enabled": True, "model": "forest", "store": "filesystem", "store_dir": directory}
    )
    # The features are each sensor's own: 200 readings of 100 sensors fit the forest as well
    # as any fleet (every sensor past its warm-up).
    readings = evaluate_sensors.generated_readings(events=20_000, seed=7, sensors=100)
    sample = evaluate_sensors.training_sample(readings, anomaly.contamination)
    features = feature_names(DEFAULT_CATALOG)
    trainer = trainer_for("forest", features=features, contamination=anomaly.contamination)
    forest = trainer.fit(sample, version="forest-bench")
    store = FilesystemModelStore(directory, namespace="sensors")
    await store.save(
        forest,
        ModelInfo(
            version=forest.version,
            kind=forest.kind,
            trained_at=datetime.now(UTC),
            sample_size=len(sample),
            features=features,
            contamination=anomaly.contamination,
        ),
    )
    return settings.model_copy(update={"anomaly": anomaly})


async def _bench_settings(
    args: argparse.Namespace, settings: Settings, topic: str, models: Path
) -> Settings:
    settings = settings.model_copy(
        update={"topics": settings.topics.model_copy(update={"sensor_readings": topic})}
    )
    if args.metrics_port is not None:
        settings = with_metrics_port(settings, args.metrics_port)
    if args.ml:
        settings = await with_forest(settings, models)
    return settings


async def _produce(args: argparse.Namespace, topic: str, seed: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "PIPELINE_TOPICS__SENSOR_READINGS": topic, "PIPELINE_LOG_LEVEL": "WARNING"}
    command = [
        sys.executable, "-m", "pipeline.entrypoints.cli", "produce", "sensors",
        "--count", str(args.events), "--rate", str(args.rate),
        "--sensors", str(args.sensors), "--seed", str(seed),
    ]  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )


async def finish_producer(producer: asyncio.subprocess.Process) -> bool:
    _, err = await producer.communicate()
    if producer.returncode != 0:
        sys.stderr.write(err.decode(errors="replace"))
        return False
    return True


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Produce `args.events` readings and run the sensors worker until it has stored them."""
    if settings.kafka.bootstrap_servers is None or settings.database.is_default:
        sys.stderr.write(
            "pipeline bench: error: needs real Kafka and PostgreSQL; set "
            "PIPELINE_KAFKA__BOOTSTRAP_SERVERS and PIPELINE_DATABASE__URL "
            '(eval "$(scripts/stack env)")\n'
        )
        return EXIT_USAGE
    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-sensor-readings-{run_id}"
    models = tempfile.TemporaryDirectory(prefix="bench-models-")
    settings = await _bench_settings(args, settings, topic, Path(models.name))
    pipeline = await bootstrap(settings, migrate=True)
    tune_gc_for_streaming()  # as pipeline-worker does
    stats = WorkerStats(latencies_ms=array("d"))
    stop = asyncio.Event()
    first_batch: list[float] = []
    first_cpu: list[float] = []

    def on_batch(current: WorkerStats) -> None:
        if not first_batch:
            first_batch.append(time.monotonic())
            first_cpu.append(time.process_time())
        if current.records >= args.events:
            stop.set()

    serving = contextlib.ExitStack()
    try:
        if isinstance(pipeline.telemetry, PrometheusTelemetry):
            metrics = settings.metrics
            port = serving.enter_context(
                serving_metrics(pipeline.telemetry, host=metrics.host, port=metrics.port or 0)
            )
            sys.stderr.write(f"metrics: http://{metrics.host}:{port}/metrics\n")
        await pipeline.ensure_topics()
        started = time.monotonic()
        producer = await _produce(args, topic, seed=int(run_id, 16))
        if args.rate == 0:
            # As fast as possible: the backlog is produced first, then drained, so the
            # worker's throughput is measured without the producer competing for the CPUs.
            if not await finish_producer(producer):
                return EXIT_FAILURE
            produced = time.monotonic()
        worker = asyncio.create_task(
            run_named_job(
                pipeline, "sensors", group_id=f"bench-sensors-{run_id}", stop=stop, stats=stats,
                on_batch=on_batch,
            )
        )  # fmt: skip
        if args.rate > 0:
            if not await finish_producer(producer):
                stop.set()
                await worker
                return EXIT_FAILURE
            produced = time.monotonic()
        await worker
        finished = time.monotonic()
        cpu_seconds = time.process_time() - (first_cpu[0] if first_cpu else 0.0)
    finally:
        serving.close()
        await pipeline.aclose()
        models.cleanup()
    run = BenchRun(
        started=started,
        produced=produced,
        first_batch=first_batch[0] if first_batch else started,
        finished=finished,
        cpu_seconds=cpu_seconds,
        stats=stats,
    )
    print_report(args, settings, run)
    return EXIT_OK
