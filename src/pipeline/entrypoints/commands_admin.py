"""`pipeline db`, `pipeline topics` and `pipeline config`: set up and inspect what the pipeline
runs on (the database schema, the Kafka topics, the effective settings)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from pipeline.entrypoints.arguments import kafka_missing
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.jobs import JOBS, describe
from pipeline.entrypoints.runtime import EXIT_OK, EXIT_USAGE
from pipeline.entrypoints.settings import Settings


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


async def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline jobs`: the registered jobs with their sources, steps, state and sinks."""
    described = [describe(entry, entry.build(settings)) for entry in JOBS.values()]
    if args.json:
        print(json.dumps(described, indent=2))
        return EXIT_OK
    for job in described:
        print(f"{job['job']}: {job['summary']}")
        for key in ("sources", "tables", "steps", "state", "sinks", "authority", "guarantee"):
            value = job[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k} ({v})" for k, v in value.items()) or "none"
            elif isinstance(value, list):
                value = ", ".join(value) or "none"
            print(f"  {key:<9} {value}")
    return EXIT_OK


async def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline config`."""
    print(json.dumps(settings.masked(), indent=2))
    return EXIT_OK


def add_schema_commands(commands: Any) -> None:
    """Add `db upgrade|current` and `topics create` to the `pipeline` subcommands."""
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument(
        "revision", nargs="?", default="head", help="Alembic revision to reach (default head)"
    )
    upgrade.set_defaults(run=cmd_db_upgrade)
    db_commands.add_parser("current", help="show the applied revision").set_defaults(
        run=cmd_db_current
    )

    topics = commands.add_parser("topics", help="Kafka topics")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    topic_commands.add_parser("create", help="create the application's topics").set_defaults(
        run=cmd_topics_create
    )


def add_jobs_command(commands: Any) -> None:
    """Add `jobs` to the `pipeline` subcommands."""
    jobs = commands.add_parser("jobs", help="list the jobs with their sources, state and sinks")
    jobs.add_argument("--json", action="store_true", help="print them as JSON")
    jobs.set_defaults(run=cmd_jobs)


def add_config_command(commands: Any) -> None:
    """Add `config` to the `pipeline` subcommands."""
    commands.add_parser("config", help="print the effective settings, secrets masked").set_defaults(
        run=cmd_config
    )
