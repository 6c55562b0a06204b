"""`pipeline produce`, `pipeline worker` and `pipeline replay`: the sensor stream's commands
(`produce` also publishes the shop, payment and social streams)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pipeline.application.generators.production import LANES
from pipeline.application.runtime.rewind import Rewound
from pipeline.entrypoints.arguments import (
    epoch_millis,
    fraction,
    integer,
    kafka_missing,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.progress import StatusLine
from pipeline.entrypoints.replay import (
    ReplayPlan,
    plan_replay,
    replay_job,
    rewind_replay,
)
from pipeline.entrypoints.runtime import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    install_stop_handlers,
    tune_gc_for_streaming,
)
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.simulated import DOMAINS, produce_simulated
from pipeline.entrypoints.simulated_processes import produce_in_processes
from pipeline.entrypoints.worker import add_worker_arguments, run_worker, stats_summary


async def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline produce sensors|shop|payments|social`."""
    if args.domain != "sensors":
        given = [flag for flag, value in _SENSOR_ONLY if getattr(args, value) is not None]
        if given:
            sys.stderr.write(
                f"pipeline produce: error: {', '.join(given)} only applies to sensors\n"
            )
            return EXIT_USAGE
    elif args.processes != 1:
        sys.stderr.write("pipeline produce: error: --processes does not apply to sensors\n")
        return EXIT_USAGE
    if kafka_missing("produce", settings):
        return EXIT_USAGE
    if args.rate == 0 and args.count is None:
        sys.stderr.write("pipeline produce: error: --rate 0 (as fast as possible) needs --count\n")
        return EXIT_USAGE
    if args.domain != "sensors":
        return await _produce(args, settings, f"{args.domain} events", _domain_events)
    return await _produce(args, settings, "readings", _sensor_readings)


_SENSOR_ONLY = (("--sensors", "sensors"), ("--anomaly-rate", "anomaly_rate"))
_DEFAULT_SENSORS = 100

Producing = Callable[
    [argparse.Namespace, Pipeline, asyncio.Event, Callable[[int], None]],
    Awaitable[tuple[int, str]],
]
"""Publishes a stream until its count or `stop`, reporting progress; returns how many
events it sent and the line that says where they went."""


async def _produce(
    args: argparse.Namespace, settings: Settings, noun: str, producing: Producing
) -> int:
    """Run `producing` with a status line and stop handlers; exit 130 when a stop request cut
    a counted run short."""
    stop = asyncio.Event()
    install_stop_handlers(stop)
    status = StatusLine()
    pipeline = await bootstrap(settings)
    tune_gc_for_streaming()
    of = f"/{args.count}" if args.count is not None else ""
    try:
        sent, summary = await producing(
            args, pipeline, stop, lambda n: status.update(f"produced {n}{of} {noun}")
        )
    finally:
        await pipeline.aclose()
    status.done(summary)
    interrupted = stop.is_set() and args.count is not None and sent < args.count
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


async def _sensor_readings(
    args: argparse.Namespace,
    pipeline: Pipeline,
    stop: asyncio.Event,
    progress: Callable[[int], None],
) -> tuple[int, str]:
    sent = await produce_sensors(
        pipeline,
        count=args.count,
        rate=args.rate,
        seed=args.seed,
        sensors=args.sensors or _DEFAULT_SENSORS,
        anomaly_rate=args.anomaly_rate,
        stop=stop,
        progress=progress,
    )
    return sent, f"produced {sent} readings to {pipeline.settings.topics.sensor_readings}"


async def _domain_events(
    args: argparse.Namespace,
    pipeline: Pipeline,
    stop: asyncio.Event,
    progress: Callable[[int], None],
) -> tuple[int, str]:
    """`pipeline produce shop|payments|social`: the generated stream into its topics."""
    if args.processes > 1:
        await pipeline.ensure_topics()  # once, before the processes race to create them
        sent = await produce_in_processes(
            pipeline.settings,
            args.domain,
            processes=args.processes,
            count=args.count,
            rate=args.rate,
            seed=args.seed,
            now=pipeline.clock.now(),
            stop=stop,
            progress=progress,
        )
    else:
        sent = await produce_simulated(
            pipeline,
            args.domain,
            count=args.count,
            rate=args.rate,
            seed=args.seed,
            stop=stop,
            progress=progress,
        )
    where = ", ".join(f"{n} to {topic}" for topic, n in sorted(sent.items())) or "nothing"
    return sent.total(), f"produced {sent.total()} {args.domain} events: {where}"


async def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline replay <job> --from-offset N | --from-time T`."""
    if kafka_missing("replay", settings):
        return EXIT_USAGE
    rewind = JOBS[args.job].authority(settings) == "kafka"
    if rewind and args.to_offset is not None:
        sys.stderr.write(
            f"pipeline replay: error: job {args.job!r} writes to Kafka topics: its replay "
            "rewinds the job's group and runs on to the end; --to-offset does not apply\n"
        )
        return EXIT_USAGE
    # Under Kafka authority the job, and so its replay, opens no database.
    pipeline = await bootstrap(settings, require_schema=not rewind, database=not rewind)
    status = StatusLine()
    try:
        topics = list(pipeline.job(args.job).build(settings).sources)
        starts: list[ReplayPlan] = []
        try:
            for topic in topics:
                ends = await pipeline.log.end_offsets(topic)
                begin: int | dict[int, int] = args.from_offset
                if args.from_time is not None:
                    begin = await pipeline.log.offsets_for_time(topic, args.from_time)
                starts.append(
                    plan_replay(
                        topic,
                        ends,
                        from_offset=begin,
                        to_offset=args.to_offset,
                        partition=args.partition,
                    )
                )
        except ValueError as error:
            sys.stderr.write(f"pipeline replay: error: {error}\n")
            return EXIT_USAGE
        plan = ReplayPlan(
            start={tp: o for p in starts for tp, o in p.start.items()},
            stop={tp: o for p in starts for tp, o in p.stop.items()},
        )
        if rewind:
            rewound = await rewind_replay(
                pipeline, args.job, plan, group_id=args.group_id or pipeline.group_id(args.job)
            )
            moved = len(rewound.offsets)
            status.done(
                f"rewound group {rewound.group_id}: {moved} partition(s) moved back; run "
                f"`pipeline-worker {args.job}` to emit their outputs again"
                if moved
                else f"nothing to rewind: group {rewound.group_id} is not past those offsets"
            )
            print(json.dumps(rewound_summary(rewound), indent=2))
            return EXIT_OK
        group = args.group_id or f"{pipeline.group_id(args.job)}-replay-{uuid.uuid4().hex[:8]}"
        total = plan.total
        status.update(
            f"replaying {total} records of {', '.join(topics)} as group {group}", force=True
        )
        stats = await replay_job(
            pipeline,
            args.job,
            plan,
            group_id=group,
            progress=lambda n: status.update(f"replayed {n}/{total} records"),
        )
    finally:
        await pipeline.aclose()
    status.done(f"replayed {stats.records}/{total} records")
    print(json.dumps({"group_id": group, **stats_summary(stats)}, indent=2))
    return EXIT_OK


def rewound_summary(rewound: Rewound) -> dict[str, object]:
    """The JSON summary of a rewind: per partition moved, the offsets before and now."""
    return {
        "group_id": rewound.group_id,
        "rewound": {
            f"{tp.topic}[{tp.partition}]": {"from": before, "to": now}
            for tp, (before, now) in rewound.offsets.items()
        },
        "partial_partitions": rewound.partial,
        "state_entries_deleted": rewound.tombstoned,
    }


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline worker <name>`, same as `pipeline-worker <name>`."""
    return await run_worker(args, settings)


def add_sensor_commands(commands: Any) -> None:
    """Add `produce`, `worker` and `replay` to the `pipeline` subcommands."""
    produce = commands.add_parser("produce", help="publish generated events to Kafka")
    domains = ["sensors", *DOMAINS]
    produce.add_argument(
        "domain", choices=domains, metavar="DOMAIN", help=f"which generator: {', '.join(domains)}"
    )
    produce.add_argument(
        "--count", type=non_negative_int, help="events to publish (default: until Ctrl-C)"
    )
    produce.add_argument(
        "--rate",
        type=non_negative_float,
        default=100.0,
        help="events per second, paced by event time (sensors: of the fleet while every "
        "sensor is online; shop, payments, social: the mean over a day); 0 = as fast as "
        "possible, ending by now (default 100)",
    )
    produce.add_argument("--seed", type=integer, default=42, help="generator seed (default 42)")
    produce.add_argument(
        "--sensors",
        type=positive_int,
        help=f"sensors only: fleet size (default {_DEFAULT_SENSORS})",
    )
    produce.add_argument(
        "--anomaly-rate",
        type=fraction,
        help="sensors only: share of readings that start an anomaly",
    )
    produce.add_argument(
        "--processes",
        type=positive_int,
        choices=range(1, LANES + 1),
        metavar="N",
        default=1,
        help=f"shop, payments, social: publish from N processes (up to {LANES}), each its "
        "share of the sessions, accounts or posts (the same events as one process; default 1)",
    )
    produce.set_defaults(run=cmd_produce)

    worker = commands.add_parser("worker", help="run a consumer worker (same as pipeline-worker)")
    add_worker_arguments(worker)
    worker.set_defaults(run=cmd_worker)

    replay = commands.add_parser("replay", help="re-run a job from an offset or a time")
    replay.add_argument(
        "job", choices=sorted(JOBS), metavar="JOB", help=f"which job: {', '.join(sorted(JOBS))}"
    )
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument(
        "--from-offset", type=non_negative_int, help="start at this offset of every partition"
    )
    start.add_argument(
        "--from-time",
        type=epoch_millis,
        help="start at the first record stamped at or after this ISO 8601 time "
        "(e.g. 2026-11-29T12:00:00Z)",
    )
    replay.add_argument(
        "--to-offset", type=non_negative_int, help="stop before this offset (default: current end)"
    )
    replay.add_argument(
        "--partition", type=non_negative_int, help="only this partition (default: all)"
    )
    replay.add_argument(
        "--group-id",
        help="consumer group to record replay offsets under (default: a new one); for a job "
        "writing to topics, the group to rewind (default: the job's)",
    )
    replay.set_defaults(run=cmd_replay)
