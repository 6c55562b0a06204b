"""A command imports what it needs when it needs it: the libraries of the database, the web
stack, metrics and models stay out of a process until its work asks for them (each costs
tenths of a second of start-up). Checked in a fresh interpreter, by the modules loaded, with
the default settings (a configured database URL is validated with SQLAlchemy's parser, which
loads it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.adapters.sql.migrate import upgrade

HEAVY = (
    "alembic",
    "aiosqlite",
    "asyncpg",
    "authlib",
    "httpx",
    "influxdb_client",
    "litestar",
    "prometheus_client",
    "sklearn",
    "sqlalchemy",
    "uvicorn",
)


def loaded_after(code: str) -> list[str]:
    """The packages of HEAVY that a fresh interpreter has loaded after running `code`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIPELINE_")}
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_worker_module_loads_no_database_web_or_metrics_library() -> None:
    assert loaded_after("import pipeline.entrypoints.worker") == []


def test_the_cli_module_loads_none_until_a_command_runs() -> None:
    assert loaded_after("import pipeline.entrypoints.cli") == []


def test_listing_the_jobs_needs_none_of_them() -> None:
    code = (
        "import contextlib, io\nfrom pipeline.entrypoints.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['jobs']) == 0"
    )

    assert loaded_after(code) == []


def test_a_registry_adapter_loads_the_registry_client_at_its_first_call() -> None:
    # The client imports authlib, httpx2 and cryptography (~0.12 s): a worker needs it at its
    # first record, not before it joins its group.
    made = (
        "from pipeline.adapters.registry import ConfluentSchemaRegistry\n"
        "registry = ConfluentSchemaRegistry('http://127.0.0.1:9', max_retries=0, timeout=1.0)"
    )
    called = (
        f"{made}\nimport asyncio, contextlib\n"
        "with contextlib.suppress(Exception):\n    asyncio.run(registry.schema(1))"
    )

    assert "authlib" not in loaded_after(made)
    assert "authlib" in loaded_after(called)


def test_checking_the_database_revision_does_not_load_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'current.db'}"
    upgrade(url)
    code = (
        "import asyncio\nfrom pipeline.adapters.sql.migrate import require_current\n"
        f"asyncio.run(require_current({url!r}))"
    )

    loaded = loaded_after(code)

    assert "alembic" not in loaded
    assert "sqlalchemy" in loaded  # the check itself ran on the database
