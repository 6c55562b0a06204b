"""`pipeline bench shop|payments|social --events N`: throughput of a domain's jobs into
PostgreSQL on the real stack. Benchmarks that print figures, not tests.

One run loop for every domain: `pipeline produce DOMAIN --rate 0` (a separate process, so
the worker's memory and CPU are its own) writes N generated events into fresh topics; then
each of the domain's jobs, in order, drains that backlog in this process as a fresh consumer
group until it has caught up. Per job: records read, batches, rows per table, alerts,
rejected and late records, records/s from its start (topic checks, restore: a fresh group
has little to restore) to its last commit, and the CPU seconds of that span (records per
CPU second, the figure a loaded machine disturbs least); then the process's peak RSS and
the load average the figures were taken at."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from dataclasses import dataclass

from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.bench import close_deleting_run_topics, finish_producer, stack_missing
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, tune_gc_for_streaming
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainBench:
    """How one domain is benchmarked."""

    domain: str
    """`pipeline produce DOMAIN` fills its topics."""
    topics: tuple[str, ...]
    """The `Settings.topics` fields given fresh topics for the run (the producer's and the
    jobs' own outputs)."""
    jobs: tuple[str, ...]
    """The registered jobs run over the backlog, in order."""
    idle_timeout_s: float | None = None
    """The jobs' idle timeout, if not the configured one."""


BENCHES = {
    "shop": DomainBench(domain="shop", topics=("ecommerce_events",), jobs=("shop",)),
    # A backlog is not idle: a topic the consumer has not polled for a while (draining the
    # others' records) must not have its watermark follow the wall clock, past the backlog's
    # event times, or its records would all be late.
    "payments": DomainBench(
        domain="payments",
        topics=("transactions", "accounts", "payment_outcomes", "system_alerts"),
        jobs=("payments",),
        idle_timeout_s=3_600.0,
    ),
    "social": DomainBench(
        domain="social",
        topics=("social_posts", "social_engagement", "social_hashtags"),
        jobs=("social-tags", "social", "post-engagement"),
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFigures:
    """What one job did over the backlog."""

    job: str
    stats: WorkerStats
    seconds: float
    """The job's start (topic checks, restore) → its last commit."""
    cpu_seconds: float
    """This process's CPU time over the same span."""


async def run_domain_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Produce `args.events` events of `args.domain`, run its jobs over them, print."""
    bench = BENCHES[args.domain]
    if stack_missing(settings):
        return EXIT_USAGE
    run_id = uuid.uuid4().hex[:8]
    names = {field: f"bench-{field.replace('_', '-')}-{run_id}" for field in bench.topics}
    update: dict[str, object] = {"topics": settings.topics.model_copy(update=names)}
    if bench.idle_timeout_s is not None:
        update["worker"] = settings.worker.model_copy(
            update={"idle_timeout_s": bench.idle_timeout_s}
        )
    settings = settings.model_copy(update=update)
    pipeline = await bootstrap(settings, migrate=True)
    tune_gc_for_streaming()  # as pipeline-worker does
    figures: list[JobFigures] = []
    try:
        await pipeline.ensure_topics()
        started = time.monotonic()
        env = {f"PIPELINE_TOPICS__{field.upper()}": name for field, name in names.items()}
        if not await _produce(bench.domain, args.events, env, seed=int(run_id, 16)):
            return EXIT_FAILURE
        produced = time.monotonic()
        for job in bench.jobs:
            figures.append(await _drain(pipeline, job, run_id))
    finally:
        await close_deleting_run_topics(pipeline, set(names.values()))
    print_figures(bench, args.events, produced - started, figures)
    return EXIT_OK


async def _produce(domain: str, events: int, env: dict[str, str], seed: int) -> bool:
    producer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline.entrypoints.cli", "produce", domain,
        "--count", str(events), "--rate", "0", "--seed", str(seed),
        env={**os.environ, **env, "PIPELINE_LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return await finish_producer(producer)


async def _drain(pipeline: Pipeline, job: str, run_id: str) -> JobFigures:
    """Run `job` as a fresh group until it has caught up with the backlog."""
    stats = WorkerStats()
    begun, cpu_start = time.monotonic(), time.process_time()
    await run_named_job(
        pipeline, job, group_id=f"bench-{job}-{run_id}", until_caught_up=True, stats=stats
    )
    return JobFigures(
        job=job,
        stats=stats,
        seconds=max(time.monotonic() - begun, 1e-9),
        cpu_seconds=max(time.process_time() - cpu_start, 1e-9),
    )


def print_figures(
    bench: DomainBench, events: int, producing_s: float, figures: list[JobFigures]
) -> None:
    """The run's figures, with the machine state they were taken in."""
    load1, load5, _ = os.getloadavg()
    print(
        f"pipeline bench {bench.domain}: {events:,} events, producer "
        f"{events / producing_s:,.0f} events/s including its process start-up\n"
        f"  machine: {os.cpu_count()} cores, load average {load1:.2f} {load5:.2f}"
    )
    for f in figures:
        stats = f.stats
        rows = ", ".join(f"{n:,} {sink}" for sink, n in sorted(stats.written.items()))
        print(
            f"  {f.job}: {stats.records:,} records in {stats.batches} batches, "
            f"{stats.records / f.seconds:,.0f} records/s ({f.seconds:.1f} s, start → last "
            f"commit), {stats.records / f.cpu_seconds:,.0f} per CPU second "
            f"({f.cpu_seconds:.1f} s); written: {rows or 'nothing'}; {stats.events} alerts; "
            f"rejected {sum(stats.rejected.values())}, late {stats.late}"
        )
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  worker peak RSS: {peak_rss_mb:.0f} MiB")
