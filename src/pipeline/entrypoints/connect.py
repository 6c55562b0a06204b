"""`pipeline connect deploy|status|restart|delete`: the connectors of the repository
(`connectors/*.json`) on a Kafka Connect cluster, through its REST API.

A connector `<key>.json` is deployed as `<worker.group_id_prefix>-<key>`, its `${pipeline:…}`
placeholders filled from the settings (the database of `PIPELINE_DATABASE__URL`, topic names).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipeline.application.errors import ConfigurationError
from pipeline.entrypoints.runtime import EXIT_OK, EXIT_USAGE
from pipeline.entrypoints.settings import Settings

EXIT_NOT_RUNNING = 3
"""`status`: a connector or one of its tasks is not running (or not deployed)."""


def placeholder_values(settings: Settings) -> dict[str, str]:
    """What `${pipeline:KEY}` stands for in the connector configs."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - only for `pipeline connect`
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        url = make_url(settings.database.url.get_secret_value())
    except ArgumentError as exc:
        raise ConfigurationError("PIPELINE_DATABASE__URL is not a database URL") from exc
    if not url.drivername.startswith("postgresql"):
        raise ConfigurationError(
            "the connectors stream PostgreSQL tables: PIPELINE_DATABASE__URL must be a "
            f"PostgreSQL URL, not {url.drivername}"
        )
    values = {
        "database.host": url.host or "localhost",
        "database.port": str(url.port or 5432),
        "database.user": url.username or "",
        "database.name": url.database or "",
    }
    for field, value in settings.topics.model_dump().items():
        if isinstance(value, str):
            values[f"topics.{field}"] = value
    return values


def _chosen(args: argparse.Namespace, settings: Settings) -> list[Any] | None:
    """The resolved configs the command names (all when it names none); None after a usage
    error message."""
    from pipeline.adapters.connect.configs import connector_configs, connectors_dir  # noqa: PLC0415

    configs = connector_configs(
        connectors_dir(settings.connect.config_dir),
        placeholder_values(settings),
        prefix=settings.worker.group_id_prefix,
    )
    wanted = args.connectors or sorted(configs)
    unknown = [key for key in wanted if key not in configs]
    if unknown:
        sys.stderr.write(
            f"pipeline connect {args.connect_command}: error: no connector config "
            f"{', '.join(map(repr, unknown))} (known: {', '.join(sorted(configs)) or 'none'})\n"
        )
        return None
    return [configs[key] for key in wanted]


def _client(settings: Settings) -> Any:
    from pipeline.adapters.connect.client import KafkaConnectClient  # noqa: PLC0415

    assert settings.connect.url is not None
    return KafkaConnectClient(settings.connect.url)


def _connect_missing(command: str, settings: Settings) -> bool:
    if settings.connect.url is not None:
        return False
    sys.stderr.write(
        f"pipeline connect {command}: error: no Kafka Connect configured. Set "
        'PIPELINE_CONNECT__URL (scripts/stack up --connect; eval "$(scripts/stack env)").\n'
    )
    return True


async def cmd_connect(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline connect ACTION [CONNECTOR...]`."""
    action: str = args.connect_command
    if _connect_missing(action, settings):
        return EXIT_USAGE
    chosen = _chosen(args, settings)
    if chosen is None:
        return EXIT_USAGE
    client = _client(settings)
    try:
        if action == "deploy":
            for connector in chosen:
                created = await client.deploy(connector.name, connector.config)
                print(f"{connector.name}\t{'created' if created else 'updated'}")
            return EXIT_OK
        if action == "restart":
            for connector in chosen:
                await client.restart(connector.name)
                print(f"{connector.name}\trestarting")
            return EXIT_OK
        if action == "delete":
            for connector in chosen:
                deleted = await client.delete(connector.name)
                print(f"{connector.name}\t{'deleted' if deleted else 'not deployed'}")
            return EXIT_OK
        return await _status(client, chosen, as_json=args.json)
    finally:
        await client.close()


async def _status(client: Any, chosen: list[Any], *, as_json: bool) -> int:
    all_running = True
    for connector in chosen:
        status = await client.status(connector.name)
        all_running = all_running and status is not None and status.running
        if as_json:
            print(
                json.dumps(
                    {"name": connector.name, "deployed": False}
                    if status is None
                    else {
                        "name": status.name,
                        "deployed": True,
                        "state": status.state,
                        "worker": status.worker,
                        "error": status.error or None,
                        "tasks": [
                            {"id": task, "state": state, "error": error or None}
                            for task, state, error in status.tasks
                        ],
                    }
                )
            )
            continue
        if status is None:
            print(f"{connector.name}\tNOT DEPLOYED")
            continue
        tasks = " ".join(f"task{task}={state}" for task, state, _ in status.tasks) or "no tasks"
        print(f"{status.name}\t{status.state}\t{tasks}\t{status.worker}")
        for line in (status.error, *(error for _, _, error in status.tasks)):
            if line:
                print(f"  {line}")
    return EXIT_OK if all_running else EXIT_NOT_RUNNING


def add_connect_commands(commands: Any) -> None:
    """Add `connect deploy|status|restart|delete` to the `pipeline` subcommands."""
    connect = commands.add_parser("connect", help="the Kafka Connect connectors (connectors/)")
    actions = connect.add_subparsers(dest="connect_command", required=True, metavar="ACTION")
    for name, description, nargs in (
        ("deploy", "create or update connectors from their configs", "*"),
        ("status", "show the state of connectors and their tasks", "*"),
        ("restart", "restart connectors and all their tasks", "*"),
        ("delete", "delete connectors (their replication slots stay)", "+"),
    ):
        action = actions.add_parser(name, help=description)
        action.add_argument(
            "connectors",
            nargs=nargs,
            metavar="CONNECTOR",
            help="config name, e.g. sensor-metadata" + (" (default: all)" if nargs == "*" else ""),
        )
        if name == "status":
            action.add_argument("--json", action="store_true", help="one JSON object per line")
        action.set_defaults(run=cmd_connect)
