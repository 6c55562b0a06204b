"""`pipeline bench sensors --events N`: throughput, end-to-end latency and memory of one sensors
worker on the real stack. A benchmark that prints figures, not a test.

The producer runs as a separate process into a fresh topic (`pipeline produce sensors`; at fixed
rates one long-lived `bench_producer` for every phase); the worker runs in this process, so its
peak RSS is this process's (the schema is upgraded by a child process; the latency samples,
8 bytes a reading, count in it). Latency per record is the time from the record's producer
timestamp to the commit of the batch that stored it.

With `--rate 0` the N readings are produced first and the worker then drains the backlog: the
throughput is the worker's alone, and the latency mostly the backlog's age. With fixed rates
(`--rate R`, or `--rates R1,R2,...` in turn) the worker is started and warmed up first (a few
readings stored), then N readings are produced at each rate while it runs: the latency is
the pipeline's own, reported per rate with the batches' sizes and where their time went."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import operator
import os
import resource
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry
from pipeline.adapters.telemetry.server import serving_metrics
from pipeline.application.errors import ConfigurationError
from pipeline.application.runtime.stats import BatchTimings, WorkerStats
from pipeline.domain import DEFAULT_CATALOG
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap, topic_specs
from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, tune_gc_for_streaming
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job, with_metrics_port
from pipeline.jobs.sensor_anomalies import feature_names


def stack_missing(settings: Settings) -> bool:
    """Whether Kafka or PostgreSQL is not configured (a bench needs the real stack): said on
    standard error; the caller exits with a usage error."""
    if settings.kafka.bootstrap_servers is None or settings.database.is_default:
        sys.stderr.write(
            "pipeline bench: error: needs real Kafka and PostgreSQL; set "
            "PIPELINE_KAFKA__BOOTSTRAP_SERVERS and PIPELINE_DATABASE__URL "
            '(eval "$(scripts/stack env)")\n'
        )
        return True
    return False


def percentile(sorted_values: array[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie (nearest rank)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def mean(values: array[float]) -> float:
    """The mean of `values` (nan when empty)."""
    return sum(values) / len(values) if values else float("nan")


WARM_UP_READINGS = 200
"""Readings stored before the fixed-rate phases, through the worker's process's producer and
again through the phases' producer: the group joined, the partitions assigned, the schema
registered, the connections ready and both producers holding their producer ids, so no
phase's latency includes the start of the worker or of the producer."""


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
    """The backlog benchmark's figures, with the machine state they were taken in."""
    stats = run.stats
    latencies = array("d", sorted(stats.latencies_ms or ()))
    worker_time = run.finished - run.first_batch
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    producer_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    load1, load5, _ = os.getloadavg()
    print(
        f"pipeline bench sensors: {args.events} readings, producer rate max, "
        f"{_described(args, settings)}\n"
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
        "  latency produced → committed (backlog age + processing): "
        f"p50 {percentile(latencies, 0.50):,.0f} ms, "
        f"p95 {percentile(latencies, 0.95):,.0f} ms, p99 {percentile(latencies, 0.99):,.0f} ms\n"
        f"  worker peak RSS: {peak_rss_mb:.0f} MiB"
    )


def _described(args: argparse.Namespace, settings: Settings) -> str:
    return (
        f"{args.sensors} sensors, topic {settings.topics.sensor_readings} "
        f"({settings.topics.sensor_readings_partitions} partitions), batch size "
        f"{settings.worker.batch_size}, metrics "
        f"{'on' if settings.metrics.port is not None else 'off'}, anomaly scoring "
        f"{settings.anomaly.model if settings.anomaly.enabled else 'off'}"
    )


def _percentiles(ordered: array[float]) -> str:
    """`p50/p95/p99 ms` of sorted milliseconds."""
    return "/".join(f"{percentile(ordered, q):,.0f}" for q in (0.50, 0.95, 0.99)) + " ms"


def _ms(values: array[float]) -> str:
    """`mean/p95` of seconds, in ms."""
    ordered = array("d", sorted(values))
    return f"{mean(ordered) * 1000:.1f}/{percentile(ordered, 0.95) * 1000:.1f}"


def print_rates_report(
    args: argparse.Namespace, settings: Settings, phases: list[RatePhase]
) -> None:
    """Per fixed rate: the latency percentiles, the batches and where their time went, the
    worker's CPU and the load average; then the same as one Markdown table."""
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        f"pipeline bench sensors: {args.events} readings at each of "
        f"{', '.join(f'{p.rate:,.0f}/s' for p in phases)}, one worker, "
        f"{_described(args, settings)}",
        f"  machine: {os.cpu_count()} cores; latency: producer timestamp (taken at produce(), "
        "before the producer's linger) → commit of the transaction that stored the reading",
    ]
    table = [
        "| rate | p50 | p95 | p99 | max | load average | batch size mean/p95 | poll "
        "| prepare (CPU) | queued | apply (transaction) | readings per CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        lat = phase.latencies_ms
        t = phase.timings
        sizes = array("d", sorted(t.sizes))
        p50, p95, p99 = (percentile(lat, q) for q in (0.50, 0.95, 0.99))
        arriving = phase.records / phase.seconds if phase.seconds > 0 else float("nan")
        per_cpu = phase.records / phase.cpu_seconds if phase.cpu_seconds > 0 else float("nan")
        load = f"{phase.load_average[0]:.1f}→{phase.load_average[1]:.1f}"
        size = f"{mean(sizes):,.0f}/{percentile(sizes, 0.95):,.0f}"
        lines += [
            f"  at {phase.rate:,.0f}/s: {phase.records:,} readings stored over "
            f"{phase.seconds:.1f} s ({arriving:,.0f}/s), {phase.rejected} rejected; "
            f"load average {load}",
            f"    latency: p50 {p50:,.0f} ms, p95 {p95:,.0f} ms, p99 {p99:,.0f} ms, "
            f"max {lat[-1] if lat else float('nan'):,.0f} ms; of it produced → polled "
            f"{_percentiles(phase.polled_ms)}, polled → committed "
            f"{_percentiles(phase.worker_ms)}",
            f"    batches: {len(sizes):,}, size mean/p95 {size}; per batch, ms mean/p95: "
            f"poll {_ms(t.poll)}, prepare {_ms(t.prepare)} (of it CPU {_ms(t.prepare_cpu)}), "
            f"queued {_ms(t.queued)}, "
            f"apply {_ms(t.apply)} (transaction {_ms(t.transaction)})",
            f"    CPU: {phase.cpu_seconds:.1f} s in the worker's process, "
            f"{per_cpu:,.0f} readings per CPU second",
        ]
        table.append(
            f"| {phase.rate:,.0f}/s | {p50:,.0f} ms | {p95:,.0f} ms | {p99:,.0f} ms "
            f"| {lat[-1] if lat else float('nan'):,.0f} ms | {load} | {size} | {_ms(t.poll)} "
            f"| {_ms(t.prepare)} ({_ms(t.prepare_cpu)}) | {_ms(t.queued)} "
            f"| {_ms(t.apply)} ({_ms(t.transaction)}) "
            f"| {per_cpu:,.0f} |"
        )
    lines.append(f"  worker peak RSS: {peak_rss_mb:.0f} MiB")
    lines.append("  per batch: ms mean/p95")
    print("\n".join([*lines, "", *table]))


def run_topics(settings: Settings, roots: Collection[str]) -> list[str]:
    """A benchmark run's own topics: `roots` (named after the run) and the dead-letter,
    late and retry topics derived from them."""
    return [
        spec.name
        for spec in topic_specs(settings)
        if spec.name in roots or any(spec.name.startswith(f"{root}.") for root in roots)
    ]


async def close_deleting_run_topics(pipeline: Pipeline, roots: Collection[str]) -> None:
    """Delete a run's own topics (`run_topics`) once it is over, then close `pipeline`. A
    broker that keeps every run's partitions slows down: with ~10,000 left by earlier runs
    and tests, the single-broker stack answered the first produce requests of a phase
    25–110 ms late, and the latency's p99 at 5,000/s measured 150–250 ms where it is ~50 ms."""
    try:
        await pipeline.log.delete_topics(run_topics(pipeline.settings, roots))
    finally:
        await pipeline.aclose()


async def delete_readings_topics(settings: Settings, topic: str) -> None:
    """Delete readings topic `topic` of a run whose processes are gone, with the topics
    derived from it (see `close_deleting_run_topics`)."""
    settings = with_readings_topic(settings, topic)
    await close_deleting_run_topics(await bootstrap(settings, database=False), {topic})


def with_readings_topic(settings: Settings, topic: str) -> Settings:
    """`settings` with `topic` as the sensor readings topic."""
    return settings.model_copy(
        update={"topics": settings.topics.model_copy(update={"sensor_readings": topic})}
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
    settings = with_readings_topic(settings, topic)
    if args.metrics_port is not None:
        settings = with_metrics_port(settings, args.metrics_port)
    if args.ml:
        settings = await with_forest(settings, models)
    return settings


async def _produce(
    args: argparse.Namespace, topic: str, seed: int, rate: float
) -> asyncio.subprocess.Process:
    command = [
        sys.executable, "-m", "pipeline.entrypoints.cli", "produce", "sensors",
        "--count", str(args.events), "--rate", str(rate),
        "--sensors", str(args.sensors), "--seed", str(seed),
    ]  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *command, env=_producer_env(topic), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def _producer_env(topic: str) -> dict[str, str]:
    return {
        **os.environ,
        "PIPELINE_TOPICS__SENSOR_READINGS": topic,
        "PIPELINE_LOG_LEVEL": "WARNING",
    }


class PhaseProducer:
    """The fixed-rate phases' producer: one process for all of them (`bench_producer`), so
    that the phases' readings go through a producer that is connected and has its producer
    id, not one still starting (its start is no part of the pipeline's latency)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls, args: argparse.Namespace, topic: str) -> PhaseProducer:
        """Start the process (it produces nothing until asked)."""
        command = [
            sys.executable, "-m", "pipeline.entrypoints.bench_producer",
            "--sensors", str(args.sensors),
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command, env=_producer_env(topic), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process)

    async def produce(self, count: int, rate: float, seed: int) -> bool:
        """Have `count` readings of fleet `seed` produced at `rate` (0: as fast as possible);
        True once all are acknowledged, False if the process ended first (what it said on
        standard error is passed on)."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(f"{count} {rate} {seed}\n".encode())
        await stdin.drain()
        if (await stdout.readline()).decode().strip() == f"done {count}":
            return True
        await self.close()
        return False

    async def close(self) -> None:
        """End the process (the end of its input) and wait for it."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        _, err = await self._process.communicate()
        if self._process.returncode != 0:
            sys.stderr.write(err.decode(errors="replace"))


async def finish_producer(producer: asyncio.subprocess.Process) -> bool:
    _, err = await producer.communicate()
    if producer.returncode != 0:
        sys.stderr.write(err.decode(errors="replace"))
        return False
    return True


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Produce `args.events` readings (at each fixed rate asked, or as fast as possible) and
    run the sensors worker until it has stored them."""
    if args.rates and args.rate > 0:
        sys.stderr.write("pipeline bench: error: give --rate or --rates, not both\n")
        return EXIT_USAGE
    if stack_missing(settings):
        return EXIT_USAGE
    rates: list[float] = args.rates or ([args.rate] if args.rate > 0 else [])
    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-sensor-readings-{run_id}"
    models = tempfile.TemporaryDirectory(prefix="bench-models-")
    settings = await _bench_settings(args, settings, topic, Path(models.name))
    await migrate_in_child()
    pipeline = await bootstrap(settings, require_schema=True)
    tune_gc_for_streaming()  # as pipeline-worker does
    serving = contextlib.ExitStack()
    try:
        if isinstance(pipeline.telemetry, PrometheusTelemetry):
            metrics = settings.metrics
            port = serving.enter_context(
                serving_metrics(pipeline.telemetry, host=metrics.host, port=metrics.port or 0)
            )
            sys.stderr.write(f"metrics: http://{metrics.host}:{port}/metrics\n")
        await pipeline.ensure_topics()
        if rates:
            phases = await _run_rates(args, pipeline, rates, run_id)
            if phases is None:
                return EXIT_FAILURE
            print_rates_report(args, settings, phases)
            return EXIT_OK
        run = await _run_backlog(args, pipeline, run_id)
        if run is None:
            return EXIT_FAILURE
    finally:
        serving.close()
        try:
            await close_deleting_run_topics(pipeline, {topic})
        finally:
            models.cleanup()
    print_report(args, settings, run)
    return EXIT_OK


async def migrate_in_child() -> None:
    """Upgrade the database schema in a child process (`pipeline db upgrade`), so that
    Alembic and Mako (~8 MiB once they have run) stay out of this process, whose peak RSS is
    reported as the worker's. Raises ConfigurationError with the child's error if it fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline.entrypoints.cli", "db", "upgrade",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    if process.returncode != 0:
        raise ConfigurationError(f"pipeline db upgrade failed: {err.decode(errors='replace')}")


async def _run_backlog(
    args: argparse.Namespace, pipeline: Pipeline, run_id: str
) -> BenchRun | None:
    """As fast as possible: the backlog is produced first, then drained, so the worker's
    throughput is measured without the producer competing for the CPUs."""
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

    started = time.monotonic()
    topic = pipeline.settings.topics.sensor_readings
    producer = await _produce(args, topic, seed=int(run_id, 16), rate=0)
    if not await finish_producer(producer):
        return None
    produced = time.monotonic()
    await run_named_job(
        pipeline, "sensors", group_id=f"bench-sensors-{run_id}", stop=stop, stats=stats,
        on_batch=on_batch,
    )  # fmt: skip
    finished = time.monotonic()
    return BenchRun(
        started=started,
        produced=produced,
        first_batch=first_batch[0] if first_batch else started,
        finished=finished,
        cpu_seconds=time.process_time() - (first_cpu[0] if first_cpu else 0.0),
        stats=stats,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RatePhase:
    """What the worker did while the producer published at one fixed rate."""

    rate: float
    records: int
    rejected: int
    seconds: float
    """From the phase's first batch read to its last commit."""
    cpu_seconds: float
    """CPU time of this process (the worker) over the phase."""
    load_average: tuple[float, float]
    """1-minute load average at the phase's start and end."""
    latencies_ms: array[float]
    """Sorted."""
    polled_ms: array[float]
    """Sorted: per reading, its producer timestamp → the poll that returned it."""
    worker_ms: array[float]
    """Sorted: per reading, the poll that returned it → the commit that stored it."""
    timings: BatchTimings


class _Stored:
    """Counts what the worker stored; wakes whoever waits for a target count."""

    def __init__(self) -> None:
        self.target = 0
        self.reached = asyncio.Event()
        self.first: float | None = None
        self.last = 0.0

    def on_batch(self, stats: WorkerStats) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.last = now
        if stats.records >= self.target:
            self.reached.set()

    def expect(self, target: int) -> None:
        """From now on, count towards `target` records stored in all."""
        self.target = target
        self.reached.clear()
        self.first = None

    async def reached_or_ended(self, worker: asyncio.Task[WorkerStats]) -> bool:
        """Wait until the target is stored; False if the worker ended first."""
        waiting = asyncio.ensure_future(self.reached.wait())
        await asyncio.wait({waiting, worker}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        return self.reached.is_set()


async def _run_rates(
    args: argparse.Namespace, pipeline: Pipeline, rates: list[float], run_id: str
) -> list[RatePhase] | None:
    """One worker; warmed up, then `args.events` readings at each rate in turn, each phase
    finished (every reading stored) before the next begins."""
    stats = WorkerStats()
    stop = asyncio.Event()
    stored = _Stored()
    topic = pipeline.settings.topics.sensor_readings
    worker = asyncio.create_task(
        run_named_job(
            pipeline, "sensors", group_id=f"bench-sensors-{run_id}", stop=stop, stats=stats,
            on_batch=stored.on_batch,
        )
    )  # fmt: skip
    phases: list[RatePhase] = []
    producer = await PhaseProducer.start(args, topic)
    try:
        # Through this process's producer too: a worker's producer (the alert relay's)
        # waits for its producer id on its first delivery, once per start, like the join.
        stored.expect(2 * WARM_UP_READINGS)
        await produce_sensors(
            pipeline, count=WARM_UP_READINGS, rate=0, seed=1, sensors=args.sensors
        )
        if not await producer.produce(WARM_UP_READINGS, rate=0, seed=2):
            return None
        if not await stored.reached_or_ended(worker):
            await worker  # raises what ended it
            return None
        for n, rate in enumerate(rates):
            stats.latencies_ms, stats.polled_ms = array("d"), array("d")
            stats.timings = BatchTimings()
            rejected = sum(stats.rejected.values())
            load_before = os.getloadavg()[0]
            cpu = time.process_time()
            stored.expect(stats.records + args.events)
            if not await producer.produce(args.events, rate=rate, seed=int(run_id, 16) + n):
                return None
            if not await stored.reached_or_ended(worker):
                await worker
                return None
            phases.append(
                RatePhase(
                    rate=rate,
                    records=len(stats.latencies_ms),
                    rejected=sum(stats.rejected.values()) - rejected,
                    seconds=stored.last - (stored.first or stored.last),
                    cpu_seconds=time.process_time() - cpu,
                    load_average=(load_before, os.getloadavg()[0]),
                    latencies_ms=array("d", sorted(stats.latencies_ms)),
                    polled_ms=array("d", sorted(stats.polled_ms)),
                    worker_ms=array(
                        "d", sorted(map(operator.sub, stats.latencies_ms, stats.polled_ms))
                    ),
                    timings=stats.timings,
                )
            )
    finally:
        await producer.close()
        stop.set()
        await worker
    return phases
