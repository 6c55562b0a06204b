"""`pipeline bench payments --events N`: events/s of the payments job into PostgreSQL on the
real stack. A benchmark that prints figures, not a test.

The generated payment stream (transactions, account profiles, outcomes) is produced first,
as fast as possible, into fresh topics; the job then drains the backlog in this process as a
fresh consumer group until caught up: the throughput is the worker's alone (validation, the
sliding window of each account's last 24 h, the profile join, the rules, the interval join
with outcomes, and the flagged rows, reasons, outcomes, alerts, state and offsets committed
in one PostgreSQL transaction per batch)."""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid

from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.runtime import EXIT_OK, EXIT_USAGE, tune_gc_for_streaming
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.simulated import produce_simulated
from pipeline.entrypoints.worker import run_named_job


async def run_bench_payments(args: argparse.Namespace, settings: Settings) -> int:
    """Produce `args.events` payment events, then run the payments job until it has caught
    up; print its throughput."""
    if settings.kafka.bootstrap_servers is None or settings.database.is_default:
        sys.stderr.write(
            "pipeline bench: error: needs real Kafka and PostgreSQL; set "
            "PIPELINE_KAFKA__BOOTSTRAP_SERVERS and PIPELINE_DATABASE__URL "
            '(eval "$(scripts/stack env)")\n'
        )
        return EXIT_USAGE
    run_id = uuid.uuid4().hex[:8]
    topics = settings.topics.model_copy(
        update={
            "transactions": f"bench-transactions-{run_id}",
            "accounts": f"bench-accounts-{run_id}",
            "payment_outcomes": f"bench-payment-outcomes-{run_id}",
            "system_alerts": f"bench-system-alerts-{run_id}",
        }
    )
    # A backlog is not idle: a topic the consumer has not polled for a while (draining the
    # others' records) must not have its watermark follow the wall clock, past the backlog's
    # event times, or its records would all be late.
    worker = settings.worker.model_copy(update={"idle_timeout_s": 3_600.0})
    settings = settings.model_copy(update={"topics": topics, "worker": worker})
    pipeline = await bootstrap(settings, migrate=True)
    tune_gc_for_streaming()  # as pipeline-worker does
    try:
        started = time.monotonic()
        sent = await produce_simulated(
            pipeline, "payments", count=args.events, rate=0.0, seed=int(run_id, 16)
        )
        produced = time.monotonic()
        cpu = time.process_time()
        stats = WorkerStats()
        await run_named_job(
            pipeline,
            "payments",
            group_id=f"bench-payments-{run_id}",
            until_caught_up=True,
            stats=stats,
        )
        finished = time.monotonic()
        cpu_seconds = time.process_time() - cpu
    finally:
        await pipeline.aclose()
    load1, load5, _ = os.getloadavg()
    worker_time = finished - produced
    written = ", ".join(f"{n:,} {sink}" for sink, n in sorted(stats.written.items()))
    print(
        f"pipeline bench payments: {sent.total():,} events "
        f"({', '.join(f'{n:,} {t}' for t, n in sorted(sent.items()))})\n"
        f"  machine: {os.cpu_count()} cores, load average {load1:.2f} {load5:.2f}\n"
        f"  producer: {sent.total() / (produced - started):,.0f} events/s (in this process)\n"
        f"  worker: {stats.records:,} records in {stats.batches} batches; rows written: "
        f"{written or 'none'}; {stats.events} alerts; {sum(stats.rejected.values())} rejected; "
        f"{stats.late} late\n"
        f"  throughput: {stats.records / worker_time:,.0f} events/s into PostgreSQL "
        f"(backlog drained in {worker_time:.1f} s), "
        f"{stats.records / max(cpu_seconds, 1e-9):,.0f} per CPU second\n"
        f"  worker peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    return EXIT_OK
