"""Migrations on the real PostgreSQL: processes migrating one empty database at the same time
take turns (an advisory lock held for the migration's transaction), and all of them succeed;
a downgrade below the state log folds it into `stream_state` first."""

from __future__ import annotations

import asyncio
import sys

import pytest
import sqlalchemy as sa
from alembic import command

from pipeline.adapters.sql import create_engine
from pipeline.adapters.sql.migrate import alembic_config, current, head
from pipeline.adapters.sql.postgres_checkpoint import PostgresCheckpointStore
from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch
from pipeline.streams.state import StateChange
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


async def test_a_downgrade_below_the_state_log_folds_it_into_stream_state_first() -> None:
    # State committed through the log and not folded yet (fewer than FOLD_AT rows) is in
    # `stream_state` once the database is downgraded to 0011, where the store of that
    # revision reads it: a downgrade loses no state.
    async with fresh_database("migrate_state_log") as url:
        engine = create_engine(url, pool_size=1)
        try:
            store = PostgresCheckpointStore(engine, {})
            tp = TopicPartition("sensor-readings", 0)
            changes = [
                [StateChange("window", 0, b"a", b"1"), StateChange("window", 0, b"b", b"1")],
                [StateChange("window", 0, b"a", b"2"), StateChange("window", 0, b"b", None)],
                [StateChange("window", 0, b"c", b"3")],
            ]
            for offset, state in enumerate(changes):
                await store.commit(
                    CheckpointBatch(
                        group_id="sensors",
                        start_offsets={tp: offset},
                        next_offsets={tp: offset + 1},
                        writes=[],
                        state=state,
                    )
                )
            await asyncio.to_thread(command.downgrade, alembic_config(url), "0011")
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text("SELECT key, value FROM stream_state WHERE group_id = 'sensors'")
                )
                folded = sorted((bytes(k), bytes(v)) for k, v in rows)
        finally:
            await engine.dispose()

    assert folded == [(b"a", b"2"), (b"c", b"3")]
