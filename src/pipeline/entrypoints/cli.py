"""`pipeline`: the command line. Parse → build settings → call the same application code the
workers use. Usage errors exit 2, failures 1, an interrupted run 130.

The commands live by group in `commands_sensors` (produce, worker, replay), `commands_admin`
(db, topics, config), `dlq`, `demo`, `bench` and `api.server`; this module builds the parser."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pipeline.entrypoints.acls import add_acls_commands
from pipeline.entrypoints.arguments import (
    CommandParser,
    fraction,
    integer,
    kafka_missing,
    non_negative_float,
    non_negative_int,
    port,
    positive_int,
    positive_numbers,
)
from pipeline.entrypoints.commands_admin import (
    add_config_command,
    add_jobs_command,
    add_schema_commands,
)
from pipeline.entrypoints.commands_sensors import add_sensor_commands
from pipeline.entrypoints.connect import add_connect_commands
from pipeline.entrypoints.dlq import add_dlq_commands
from pipeline.entrypoints.models import add_models_commands
from pipeline.entrypoints.runtime import Command, run_command
from pipeline.entrypoints.settings import Settings

# `dlq replay` imports kafka_missing from here; it is kept importable under its old home.
__all__ = [
    "build_parser",
    "cmd_api",
    "cmd_bench",
    "cmd_demo",
    "cmd_evaluate_payments",
    "cmd_evaluate_sensors",
    "kafka_missing",
    "main",
]


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline demo`."""
    from pipeline.entrypoints.demo import run_demo  # noqa: PLC0415

    return await run_demo(args, settings)


async def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline api`."""
    from pipeline.entrypoints.api.server import run_api  # noqa: PLC0415 - web stack on demand

    return await run_api(args, settings)


async def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline models …`."""
    from pipeline.entrypoints.models import run_models  # noqa: PLC0415

    return await run_models(args, settings)


async def cmd_evaluate_sensors(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline evaluate sensors`."""
    del settings
    from pipeline.entrypoints.evaluate_sensors import run_evaluate  # noqa: PLC0415

    return await run_evaluate(args)


async def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline bench sensors|shop|payments|social`."""
    if args.embedded:
        from pipeline.entrypoints.bench_embedded import run_embedded_bench  # noqa: PLC0415

        return await run_embedded_bench(args, settings)
    if args.domain in ("shop", "payments", "social"):
        from pipeline.entrypoints.bench_domains import run_domain_bench  # noqa: PLC0415

        return await run_domain_bench(args, settings)
    if args.floor is not None:
        from pipeline.entrypoints.bench_floor import run_floor_bench  # noqa: PLC0415

        return await run_floor_bench(args, settings)
    from pipeline.entrypoints.bench import run_bench  # noqa: PLC0415

    return await run_bench(args, settings)


async def cmd_evaluate_payments(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline evaluate payments`."""
    from pipeline.entrypoints.evaluate_payments import run_evaluate_payments  # noqa: PLC0415

    return await run_evaluate_payments(args, settings)


def add_evaluate_commands(commands: Any) -> None:
    """`pipeline evaluate sensors|payments`: a job's detectors against a generator's labels,
    in memory."""
    evaluate = commands.add_parser(
        "evaluate", help="score a job's detectors against a generator's labels (in memory)"
    )
    domains = evaluate.add_subparsers(
        dest="domain", required=True, metavar="DOMAIN", parser_class=CommandParser
    )
    sensors = domains.add_parser(
        "sensors", help="anomaly detectors against labelled generated anomalies"
    )
    sensors.add_argument(
        "--events", type=positive_int, default=200_000, help="readings (default 200000)"
    )
    sensors.add_argument("--seed", type=integer, default=1, help="fleet seed (default 1)")
    sensors.add_argument(
        "--sensors", type=positive_int, default=100, help="sensors in the fleet (default 100)"
    )
    sensors.add_argument(
        "--anomaly-rate",
        type=fraction,
        default=0.002,
        help="probability a reading starts an anomaly (default 0.002)",
    )
    sensors.add_argument(
        "--contamination",
        type=fraction,
        default=0.05,
        help="share of the training sample the fitted models flag (default 0.05)",
    )
    sensors.set_defaults(run=cmd_evaluate_sensors)
    payments = domains.add_parser(
        "payments", help="fraud rules and scoring models against labelled fraud"
    )
    payments.add_argument(
        "--events", type=positive_int, default=200_000, help="events to generate (default 200000)"
    )
    payments.add_argument("--seed", type=integer, default=1, help="generator seed (default 1)")
    payments.add_argument(
        "--rate",
        type=non_negative_float,
        default=4.0,
        help="events/s of event time: fewer spread the events over more hours, so that "
        "night and travel fraud (hours apart) show (default 4)",
    )
    payments.add_argument(
        "--fraud-rate",
        type=fraction,
        default=0.01,
        help="probability that a transaction starts a fraud episode (default 0.01)",
    )
    payments.add_argument(
        "--models",
        default="forest,zscore",
        help="models fitted and compared with the rules, comma-separated, or 'none' "
        "(default forest,zscore)",
    )
    payments.add_argument(
        "--contamination",
        type=fraction,
        default=0.04,
        help="share of the training sample the fitted models flag (default 0.04)",
    )
    payments.set_defaults(run=cmd_evaluate_payments)


def build_parser() -> argparse.ArgumentParser:
    """The `pipeline` argument parser."""
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Real-time event streaming on Kafka: produce, process, replay, inspect.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandParser
    )

    add_sensor_commands(commands)

    demo = commands.add_parser("demo", help="generator + worker in one process, no services needed")
    demo.add_argument(
        "--duration",
        type=non_negative_float,
        help="stop after this many seconds and print a summary",
    )
    demo.add_argument(
        "--rate",
        type=non_negative_float,
        default=1000.0,
        help="readings per second of the fleet while every sensor is online (default 1000)",
    )
    demo.add_argument(
        "--sensors",
        type=positive_int,
        default=100,
        help="sensors in the fleet; types cycle temperature, humidity, pressure (default 100)",
    )
    demo.add_argument(
        "--seed",
        type=integer,
        default=42,
        help="generator seed: the same seed gives the same readings (default 42)",
    )
    demo.add_argument(
        "--anomaly-rate",
        type=fraction,
        default=0.01,
        help="share of readings that start an anomaly (default 0.01: about two alerts a second)",
    )
    demo.add_argument(
        "--stream-rate",
        type=non_negative_float,
        default=20.0,
        help="events per second of each other stream (shop, payments, social) whose job is "
        "registered; 0 leaves them out (default 20)",
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
        type=port,
        default=8000,
        help="port of the API and dashboard, 0 = any free port (default 8000)",
    )
    demo.add_argument(
        "--no-api", action="store_true", help="do not serve the API and the dashboard"
    )
    demo.set_defaults(run=cmd_demo)

    add_schema_commands(commands)
    add_dlq_commands(commands)
    add_jobs_command(commands)
    add_config_command(commands)
    add_acls_commands(commands)
    add_connect_commands(commands)

    api = commands.add_parser("api", help="serve the HTTP API (REST, OpenAPI at /docs)")
    api.add_argument("--host", help="interface to listen on (default: PIPELINE_API__HOST)")
    api.add_argument("--port", type=non_negative_int, help="port (default: PIPELINE_API__PORT)")
    api.add_argument(
        "--workers", type=positive_int, help="server processes (default: PIPELINE_API__WORKERS)"
    )
    api.set_defaults(run=cmd_api)

    bench = commands.add_parser("bench", help="benchmark a worker on the real stack")
    bench.add_argument(
        "domain",
        choices=["sensors", "shop", "payments", "social"],
        metavar="DOMAIN",
        help="which pipeline: sensors, shop, payments, social (shop, payments and social: "
        "events produced first, then drained)",
    )
    bench.add_argument(
        "--events",
        type=positive_int,
        default=200_000,
        help="readings (payments: events) to produce and process (default 200000)",
    )
    bench.add_argument(
        "--rate",
        type=non_negative_float,
        default=0.0,
        help="producer rate in readings/s, 0 = as fast as possible (default 0)",
    )
    bench.add_argument(
        "--rates",
        type=positive_numbers,
        metavar="R1,R2,...",
        help="sensors: one worker, --events readings at each of these fixed rates in turn "
        "(e.g. 5000,10000,20000): latency percentiles, batch sizes and where each batch's "
        "time goes, per rate",
    )
    bench.add_argument(
        "--sensors", type=positive_int, default=1_000, help="sensors in the fleet (default 1000)"
    )
    bench.add_argument(
        "--metrics-port",
        type=port,
        metavar="PORT",
        help="keep Prometheus metrics and serve them on PORT (0: a free one), as "
        "`pipeline-worker --metrics-port` does (default: PIPELINE_METRICS__PORT, unset: none)",
    )
    bench.add_argument(
        "--floor",
        type=positive_int,
        metavar="RUNS",
        help="instead: run the worker and the floor (benchmarks/floor_sensors.py, a minimal "
        "script doing the same work) alternately RUNS times each on one backlog of --events "
        "readings, as whole processes, and print both and their ratio",
    )
    bench.add_argument(
        "--embedded",
        action="store_true",
        help="sensors only: run on the embedded default (in-memory log and registry, a "
        "SQLite file) as `pipeline demo` does, with no service",
    )
    bench.add_argument(
        "--ml",
        action="store_true",
        help="score every reading with an Isolation Forest (fitted first on generated "
        "readings; retraining on) to compare with a run without",
    )
    bench.set_defaults(run=cmd_bench)

    add_models_commands(commands)
    commands.choices["models"].set_defaults(run=cmd_models)
    add_evaluate_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script `pipeline`."""
    args = build_parser().parse_args(argv)
    command: Command = args.run
    return run_command("pipeline", command, args)


if __name__ == "__main__":
    raise SystemExit(main())
