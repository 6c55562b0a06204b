"""The composition root closes the checkpoint store (its background work) with the pipeline,
before the database it writes to."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.adapters.sql.sqlite_checkpoint import SqliteCheckpointStore
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings


async def test_the_checkpoint_store_is_closed_before_the_store_it_writes_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []

    async def close_checkpoint(self: SqliteCheckpointStore) -> None:
        # Slower than the store's close: were the two closed together, the store would be
        # first.
        await asyncio.sleep(0.05)
        closed.append("checkpoint")

    async def close_store(self: SqlSensorStore) -> None:
        closed.append("store")
        await self.engine.dispose()

    monkeypatch.setattr(SqliteCheckpointStore, "close", close_checkpoint)
    monkeypatch.setattr(SqlSensorStore, "close", close_store)
    store = SqlSensorStore(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"))
    pipeline = await bootstrap(
        Settings(), log=InMemoryEventLog(), registry=InMemorySchemaRegistry(), store=store
    )
    assert isinstance(pipeline.checkpoint, SqliteCheckpointStore)

    await pipeline.aclose()

    assert closed == ["checkpoint", "store"]


async def test_a_checkpoint_store_given_to_bootstrap_is_closed_with_the_pipeline() -> None:
    closed: list[str] = []

    class Recording(InMemoryCheckpointStore):
        async def close(self) -> None:
            closed.append("checkpoint")

    pipeline = await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
        checkpoint=Recording({}),
    )

    await pipeline.aclose()

    assert closed == ["checkpoint"]
