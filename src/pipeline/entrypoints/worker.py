"""`pipeline-worker <job>`: run one registered job until stopped (or caught up)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from pipeline.application.errors import ProducerFenced
from pipeline.application.runtime.runner import run_job
from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.arguments import port, positive_int
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.models import FAMILIES, anomaly_scoring
from pipeline.entrypoints.runtime import (
    EXIT_OK,
    EXIT_USAGE,
    collector_off_while_starting,
    install_stop_handlers,
    run_command,
    tune_gc_for_streaming,
)
from pipeline.entrypoints.settings import Settings

log = structlog.get_logger(__name__)


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `pipeline-worker` (shared with `pipeline worker`)."""
    parser.add_argument(
        "name", choices=sorted(JOBS), metavar="JOB", help=f"which job: {', '.join(sorted(JOBS))}"
    )
    parser.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit 0 once the group's lag on the assigned partitions is zero",
    )
    parser.add_argument("--group-id", help="consumer group (default: <prefix>-<name>)")
    parser.add_argument(
        "--stats-json", type=Path, help="write the final counters to this file as JSON"
    )
    parser.add_argument(
        "--metrics-port",
        type=port,
        metavar="PORT",
        help="serve Prometheus metrics on http://<PIPELINE_METRICS__HOST>:PORT/metrics "
        "(0: a free port; default: PIPELINE_METRICS__PORT, unset: no metrics)",
    )
    parser.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        metavar="N",
        help="run N members of the group, one process each, supervised by this one "
        "(default 1; process i serves metrics on PORT + i)",
    )


def stats_summary(stats: WorkerStats) -> dict[str, object]:
    """The counters of a worker run as plain data."""
    return {
        "records": stats.records,
        "batches": stats.batches,
        "written": dict(stats.written),
        "skipped_already_applied": stats.skipped,
        "events": stats.events,
        "rejected": dict(stats.rejected),
        "late": stats.late,
        "retries": stats.retries,
        "retried_in_place": stats.retried_in_place,
        "sent_to_retry": dict(stats.sent_to_retry),
        "pauses": stats.pauses,
        "paused_seconds": round(stats.paused_seconds, 1),
        "records_per_second": round(stats.rate, 1),
    }


async def run_named_job(
    pipeline: Pipeline,
    name: str,
    *,
    group_id: str | None = None,
    stop: asyncio.Event | None = None,
    until_caught_up: bool = False,
    stats: WorkerStats | None = None,
    on_batch: Callable[[WorkerStats], None] | None = None,
) -> WorkerStats:
    """Run the registered job `name` (its topics created, its events handed on — e.g. the
    alert outbox relayed, first what an earlier run left) until stopped or caught up."""
    entry = pipeline.job(name)
    async with contextlib.AsyncExitStack() as scope:
        scoring = None
        family = FAMILIES.get(entry.model_namespace or "")
        if family is not None and family.enabled(pipeline.settings):
            scoring = await scope.enter_async_context(
                anomaly_scoring(pipeline.settings, pipeline.telemetry, family)
            )
        run = pipeline.job_run(name, group_id=group_id, scoring=scoring)
        await pipeline.ensure_topics()
        on_events = entry.on_events(pipeline) if entry.on_events is not None else None
        if on_events is not None:
            await on_events(())
        return await run_job(
            run,
            stop=stop,
            until_caught_up=until_caught_up,
            stats=stats,
            on_batch=on_batch,
            on_events=on_events,
        )


async def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the worker named in `args`; return the exit code."""
    if settings.kafka.bootstrap_servers is None:
        sys.stderr.write(
            "pipeline-worker: error: no Kafka configured. Set PIPELINE_KAFKA__BOOTSTRAP_SERVERS "
            "(the in-memory log lives only inside `pipeline demo`).\n"
        )
        return EXIT_USAGE
    if args.processes > 1:
        from pipeline.entrypoints.worker_processes import run_processes  # noqa: PLC0415

        gc.enable()  # a supervisor: it starts nothing of its own (see `main`)
        return await run_processes(args)
    if args.metrics_port is not None:
        settings = with_metrics_port(settings, args.metrics_port)
    stop = asyncio.Event()
    install_stop_handlers(stop)
    database = JOBS[args.name].authority(settings) == "database"
    pipeline = await bootstrap(settings, require_schema=True, database=database)
    tune_gc_for_streaming()
    try:
        group = args.group_id or pipeline.group_id(args.name)
        with contextlib.ExitStack() as serving:
            telemetry = pipeline.telemetry
            if telemetry.enabled:
                # prometheus_client only when metrics are kept.
                from pipeline.adapters.telemetry.prometheus import (  # noqa: PLC0415
                    PrometheusTelemetry,
                )
                from pipeline.adapters.telemetry.server import serving_metrics  # noqa: PLC0415

                assert isinstance(telemetry, PrometheusTelemetry)
                host = settings.metrics.host
                port = serving.enter_context(
                    serving_metrics(telemetry, host=host, port=settings.metrics.port or 0)
                )
                log.info("metrics served", url=f"http://{host}:{port}/metrics")
            log.info("worker starting", job=args.name, group=group)
            stats = await run_named_job(
                pipeline,
                args.name,
                group_id=group,
                stop=stop,
                until_caught_up=args.until_caught_up,
            )
    except ProducerFenced as error:
        # A zombie: the newer instance has this member's transactions; stopping is all
        # that is left (the caller prints this one line and exits 1).
        member = settings.worker.instance_id or pipeline.worker_id
        raise ProducerFenced(
            f"job {args.name!r} stopped: another worker runs as member {member!r} of group "
            f"{group!r} and fenced this one (each live worker needs its own "
            f"PIPELINE_WORKER__INSTANCE_ID): {error}"
        ) from error
    finally:
        await pipeline.aclose()
    summary = stats_summary(stats)
    log.info("worker stopped", **summary)
    if args.stats_json is not None:
        args.stats_json.write_text(json.dumps(summary, indent=2) + "\n")
    return EXIT_OK


def with_metrics_port(settings: Settings, metrics_port: int) -> Settings:
    """`settings` with the metrics port given on the command line."""
    metrics = settings.metrics.model_copy(update={"port": metrics_port})
    return settings.model_copy(update={"metrics": metrics})


def build_parser() -> argparse.ArgumentParser:
    """The `pipeline-worker` argument parser."""
    parser = argparse.ArgumentParser(
        prog="pipeline-worker", description="Run a pipeline job as a consumer worker."
    )
    add_worker_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script `pipeline-worker`."""
    args = build_parser().parse_args(argv)
    with collector_off_while_starting():
        return run_command("pipeline-worker", run_worker, args)


if __name__ == "__main__":
    raise SystemExit(main())
