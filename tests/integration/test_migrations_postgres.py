"""Migrations on the real PostgreSQL: processes migrating one empty database at the same time
take turns (an advisory lock held for the migration's transaction), and all of them succeed."""

from __future__ import annotations

import asyncio
import sys

import pytest

from pipeline.adapters.sql.migrate import current, head
from tests.databases import fresh_database

pytestmark = pytest.mark.integration

UPGRADE = "import sys; from pipeline.adapters.sql.migrate import upgrade; upgrade(sys.argv[1])"


async def test_processes_upgrading_an_empty_database_together_all_succeed() -> None:
    async with fresh_database("migrate_race", migrate=False) as url:
        assert await asyncio.to_thread(current, url) is None
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", UPGRADE, url, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(2)
        ]
        # Without the lock the second fails on a table the first has just created.
        errors = [(await p.communicate())[1] for p in processes]
        done = zip(processes, errors, strict=True)
        failures = [error.decode()[-600:] for p, error in done if p.returncode]
        assert failures == []
        assert await asyncio.to_thread(current, url) == head()
