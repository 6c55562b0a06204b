"""`pipeline`: the command line. Parse → build settings → call the same application code the
workers use. Usage errors exit 2, failures 1, an interrupted run 130."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Sequence

from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.dlq import add_dlq_commands
from pipeline.entrypoints.progress import StatusLine
from pipeline.entrypoints.runtime import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    install_stop_handlers,
    run_command,
    tune_gc_for_streaming,
)
from pipeline.entrypoints.sensors import plan_replay, produce_sensors, replay_sensors
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import add_worker_arguments, run_worker, stats_summary


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 0 and 65535, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = _float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def kafka_missing(command: str, settings: Settings) -> bool:
    """True (after saying so on stderr) when `command` needs Kafka and none is configured:
    the in-memory log would take the records and lose them with the process."""
    if settings.kafka.bootstrap_servers is not None:
        return False
    sys.stderr.write(
        f"pipeline {command}: error: no Kafka configured. Set PIPELINE_KAFKA__BOOTSTRAP_SERVERS "
        '(eval "$(scripts/stack env)"); `pipeline demo` runs without services.\n'
    )
    return True


async def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline produce sensors`."""
    if kafka_missing("produce", settings):
        return EXIT_USAGE
    if args.rate == 0 and args.count is None:
        sys.stderr.write("pipeline produce: error: --rate 0 (as fast as possible) needs --count\n")
        return EXIT_USAGE
    stop = asyncio.Event()
    install_stop_handlers(stop)
    status = StatusLine()
    pipeline = await bootstrap(settings)
    tune_gc_for_streaming()
    total = args.count
    try:

        def progress(sent: int) -> None:
            of = f"/{total}" if total is not None else ""
            status.update(f"produced {sent}{of} readings")

        sent = await produce_sensors(
            pipeline,
            count=args.count,
            rate=args.rate,
            seed=args.seed,
            sensors=args.sensors,
            anomaly_rate=args.anomaly_rate,
            stop=stop,
            progress=progress,
        )
    finally:
        await pipeline.aclose()
    status.done(f"produced {sent} readings to {settings.topics.sensor_readings}")
    return (
        EXIT_INTERRUPTED
        if stop.is_set() and args.count is not None and sent < args.count
        else EXIT_OK
    )


async def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline replay sensors --from-offset N`."""
    if kafka_missing("replay", settings):
        return EXIT_USAGE
    pipeline = await bootstrap(settings, require_schema=True)
    status = StatusLine()
    try:
        topic = settings.topics.sensor_readings
        ends = await pipeline.log.end_offsets(topic)
        try:
            plan = plan_replay(
                topic,
                ends,
                from_offset=args.from_offset,
                to_offset=args.to_offset,
                partition=args.partition,
            )
        except ValueError as error:
            sys.stderr.write(f"pipeline replay: error: {error}\n")
            return EXIT_USAGE
        group = args.group_id or f"{pipeline.group_id('sensors')}-replay-{uuid.uuid4().hex[:8]}"
        total = plan.total
        status.update(f"replaying {total} records of {topic} as group {group}", force=True)
        stats = await replay_sensors(
            pipeline,
            plan,
            group_id=group,
            progress=lambda n: status.update(f"replayed {n}/{total} records"),
        )
    finally:
        await pipeline.aclose()
    status.done(f"replayed {stats.records}/{total} records")
    print(json.dumps({"group_id": group, **stats_summary(stats)}, indent=2))
    return EXIT_OK


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline worker <name>`, same as `pipeline-worker <name>`."""
    return await run_worker(args, settings)


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline db upgrade [REVISION]`."""
    from pipeline.adapters.sql.migrate import upgrade  # noqa: PLC0415 - SQL only when asked

    await asyncio.to_thread(upgrade, settings.database.url.get_secret_value(), args.revision)
    print(f"database upgraded to {args.revision}")
    return EXIT_OK


async def cmd_db_current(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline db current`."""
    from pipeline.adapters.sql.migrate import current  # noqa: PLC0415

    print(await asyncio.to_thread(current, settings.database.url.get_secret_value()) or "none")
    return EXIT_OK


async def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline topics create`."""
    if kafka_missing("topics create", settings):
        return EXIT_USAGE
    pipeline = await bootstrap(settings)
    try:
        await pipeline.ensure_topics()
        for spec in pipeline.topic_specs():
            print(f"{spec.name}\t{spec.partitions} partitions")
    finally:
        await pipeline.aclose()
    return EXIT_OK


async def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline config`."""
    print(json.dumps(settings.masked(), indent=2))
    return EXIT_OK


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline demo`."""
    from pipeline.entrypoints.demo import run_demo  # noqa: PLC0415

    return await run_demo(args, settings)


async def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline api`."""
    from pipeline.entrypoints.api.server import run_api  # noqa: PLC0415 - web stack on demand

    return await run_api(args, settings)


async def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline bench sensors`."""
    from pipeline.entrypoints.bench import run_bench  # noqa: PLC0415

    return await run_bench(args, settings)


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one statement per option
    """The `pipeline` argument parser."""
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Real-time event streaming on Kafka: produce, process, replay, inspect.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    produce = commands.add_parser("produce", help="publish generated events to Kafka")
    produce.add_argument("domain", choices=["sensors"], help="which generator")
    produce.add_argument(
        "--count", type=_non_negative_int, help="readings to publish (default: until Ctrl-C)"
    )
    produce.add_argument(
        "--rate",
        type=_non_negative_float,
        default=100.0,
        help="readings per second, 0 = as fast as possible (default 100)",
    )
    produce.add_argument("--seed", type=_int, default=42, help="generator seed (default 42)")
    produce.add_argument(
        "--sensors", type=_positive_int, default=100, help="fleet size (default 100)"
    )
    produce.add_argument(
        "--anomaly-rate", type=_fraction, help="share of readings that start an anomaly"
    )
    produce.set_defaults(run=cmd_produce)

    worker = commands.add_parser("worker", help="run a consumer worker (same as pipeline-worker)")
    add_worker_arguments(worker)
    worker.set_defaults(run=cmd_worker)

    replay = commands.add_parser("replay", help="re-run a projection from an offset")
    replay.add_argument("domain", choices=["sensors"])
    replay.add_argument("--from-offset", type=_non_negative_int, required=True)
    replay.add_argument(
        "--to-offset", type=_non_negative_int, help="stop before this offset (default: current end)"
    )
    replay.add_argument(
        "--partition", type=_non_negative_int, help="only this partition (default: all)"
    )
    replay.add_argument(
        "--group-id", help="consumer group to record replay offsets under (default: a new one)"
    )
    replay.set_defaults(run=cmd_replay)

    demo = commands.add_parser("demo", help="generator + worker in one process, no services needed")
    demo.add_argument(
        "--duration",
        type=_non_negative_float,
        help="stop after this many seconds and print a summary",
    )
    demo.add_argument(
        "--rate",
        type=_non_negative_float,
        default=2000.0,
        help="readings per second (default 2000)",
    )
    demo.add_argument("--sensors", type=_positive_int, default=100)
    demo.add_argument("--seed", type=_int, default=42)
    demo.add_argument(
        "--anomaly-rate",
        type=_fraction,
        default=0.005,
        help="share of readings that start an anomaly (default 0.005: alerts every second)",
    )
    demo.add_argument(
        "--db",
        default="pipeline-demo.db",
        help="SQLite file of the demo (default pipeline-demo.db)",
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="interface of the API and dashboard (default 127.0.0.1)"
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port of the API and dashboard, 0 = any free port (default 8000)",
    )
    demo.add_argument(
        "--no-api", action="store_true", help="do not serve the API and the dashboard"
    )
    demo.set_defaults(run=cmd_demo)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(run=cmd_db_upgrade)
    db_commands.add_parser("current", help="show the applied revision").set_defaults(
        run=cmd_db_current
    )

    topics = commands.add_parser("topics", help="Kafka topics")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    topic_commands.add_parser("create", help="create the application's topics").set_defaults(
        run=cmd_topics_create
    )

    add_dlq_commands(commands)

    commands.add_parser("config", help="print the effective settings, secrets masked").set_defaults(
        run=cmd_config
    )

    api = commands.add_parser("api", help="serve the HTTP API (REST, OpenAPI at /docs)")
    api.add_argument("--host", help="interface to listen on (default: PIPELINE_API__HOST)")
    api.add_argument("--port", type=_non_negative_int, help="port (default: PIPELINE_API__PORT)")
    api.add_argument(
        "--workers", type=_positive_int, help="server processes (default: PIPELINE_API__WORKERS)"
    )
    api.set_defaults(run=cmd_api)

    bench = commands.add_parser("bench", help="benchmark a worker on the real stack")
    bench.add_argument("domain", choices=["sensors"])
    bench.add_argument("--events", type=_positive_int, default=200_000)
    bench.add_argument(
        "--rate",
        type=_non_negative_float,
        default=0.0,
        help="producer rate, 0 = as fast as possible",
    )
    bench.add_argument("--sensors", type=_positive_int, default=1_000)
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script `pipeline`."""
    args = build_parser().parse_args(argv)
    command: Command = args.run
    return run_command("pipeline", command, args)


if __name__ == "__main__":
    raise SystemExit(main())
