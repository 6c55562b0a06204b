"""`pipeline bench social --events N`: throughput of the three social jobs into PostgreSQL on
the real stack. A benchmark that prints figures, not a test.

`pipeline produce social` (a separate process) publishes N generated posts, likes and shares
into fresh topics as fast as it can; then each job drains its backlog in this process, one
after the other, from a fresh consumer group: `social-tags` (posts → hashtag uses, a Kafka
transaction per batch), `social` (hopping counts, top k, burst scores → PostgreSQL) and
`post-engagement` (the interval join → PostgreSQL). Each job's figure is records it read per
second, from its start to its last commit (topic creation and restore included)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.bench import finish_producer
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, tune_gc_for_streaming
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job

JOBS = ("social-tags", "social", "post-engagement")


async def run_social_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Produce `args.events` social events and run each social job over them."""
    if settings.kafka.bootstrap_servers is None or settings.database.is_default:
        sys.stderr.write(
            "pipeline bench: error: needs real Kafka and PostgreSQL; set "
            "PIPELINE_KAFKA__BOOTSTRAP_SERVERS and PIPELINE_DATABASE__URL "
            '(eval "$(scripts/stack env)")\n'
        )
        return EXIT_USAGE
    run_id = uuid.uuid4().hex[:8]
    names = {
        "social_posts": f"bench-social-posts-{run_id}",
        "social_engagement": f"bench-social-engagement-{run_id}",
        "social_hashtags": f"bench-social-hashtags-{run_id}",
    }
    settings = settings.model_copy(update={"topics": settings.topics.model_copy(update=names)})
    pipeline = await bootstrap(settings, migrate=True)
    tune_gc_for_streaming()
    figures: list[tuple[str, WorkerStats, float]] = []
    try:
        await pipeline.ensure_topics()
        env = {
            **os.environ,
            "PIPELINE_TOPICS__SOCIAL_POSTS": names["social_posts"],
            "PIPELINE_TOPICS__SOCIAL_ENGAGEMENT": names["social_engagement"],
            "PIPELINE_LOG_LEVEL": "WARNING",
        }
        started = time.monotonic()
        producer = await _produce(args, env, seed=int(run_id, 16))
        if not await finish_producer(producer):
            return EXIT_FAILURE
        produced = time.monotonic() - started
        for job in JOBS:
            began = time.monotonic()
            stats = await run_named_job(
                pipeline, job, group_id=f"bench-{job}-{run_id}", until_caught_up=True
            )
            figures.append((job, stats, time.monotonic() - began))
    finally:
        await pipeline.aclose()
    load1, load5, _ = os.getloadavg()
    print(
        f"pipeline bench social: {args.events:,} events (posts, likes, shares), producer "
        f"{args.events / produced:,.0f} events/s including its start-up\n"
        f"  machine: {os.cpu_count()} cores, load average {load1:.2f} {load5:.2f}"
    )
    for job, stats, seconds in figures:
        rows = ", ".join(f"{n:,} {sink}" for sink, n in sorted(stats.written.items()))
        print(
            f"  {job}: {stats.records:,} records in {seconds:.1f} s = "
            f"{stats.records / seconds:,.0f} records/s; {stats.batches} batches; "
            f"written: {rows or 'nothing'}; rejected {sum(stats.rejected.values())}, "
            f"late {stats.late}"
        )
    return EXIT_OK


async def _produce(
    args: argparse.Namespace, env: dict[str, str], seed: int
) -> asyncio.subprocess.Process:
    command = [
        sys.executable, "-m", "pipeline.entrypoints.cli", "produce", "social",
        "--count", str(args.events), "--rate", "0", "--seed", str(seed),
    ]  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
