"""`pipeline bench sensors` reports its own process's peak RSS as the worker's: the schema is
upgraded by a child process, so the migration tool never loads into it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.application.errors import ConfigurationError
from pipeline.entrypoints.bench import migrate_in_child

PROBE = """
import asyncio, json, sqlite3, sys
from pipeline.entrypoints.bench import migrate_in_child
asyncio.run(migrate_in_child())
tables = {r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT name FROM sqlite_master")}
print(json.dumps(["alembic" in sys.modules, "readings" in tables]))
"""


def test_the_bench_upgrades_the_schema_in_a_child_process(tmp_path: Path) -> None:
    database = tmp_path / "bench.db"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIPELINE_")}
    env["PIPELINE_DATABASE__URL"] = f"sqlite+aiosqlite:///{database}"

    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(database)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip

    alembic_loaded, migrated = json.loads(done.stdout.splitlines()[-1])
    assert migrated is True
    assert alembic_loaded is False


async def test_a_failed_upgrade_is_a_configuration_error_with_the_childs_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPELINE_DATABASE__URL", "mysql://nowhere/db")

    with pytest.raises(ConfigurationError, match="unsupported database URL scheme"):
        await migrate_in_child()
