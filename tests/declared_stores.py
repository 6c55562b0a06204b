"""The stores a contract of a job's declared table sinks and their queries runs on: in memory,
SQLite and PostgreSQL, each a checkpoint store writing the sinks beside the engine the SQL
queries read (the database migrated by Alembic, the sinks' tables and the offsets emptied)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.adapters.memory.dead_letters import InMemoryDeadLetterStore
from pipeline.adapters.memory.table_sinks import DeclaredRows, memory_table_sinks
from pipeline.adapters.sql import create_engine, tables
from pipeline.adapters.sql.checkpoint import sql_checkpoint_store
from pipeline.adapters.sql.migrate import upgrade
from pipeline.adapters.sql.table_sinks import TableSink, postgres_table_sinks, sqlite_table_sinks
from pipeline.application.ports.checkpoint import CheckpointStore

Sinks = Mapping[str, TableSink[Any]]


def memory_store(sinks: Sinks, rows: DeclaredRows) -> InMemoryCheckpointStore:
    """A checkpoint store writing `sinks` into `rows` (what the in-memory queries read)."""
    return InMemoryCheckpointStore(
        memory_table_sinks(sinks, rows), dead_letters=InMemoryDeadLetterStore()
    )


def sql_store(engine: AsyncEngine, sinks: Sinks) -> CheckpointStore:
    """A checkpoint store writing `sinks` through `engine` (PostgreSQL or SQLite)."""
    return sql_checkpoint_store(
        engine, postgres=postgres_table_sinks(sinks), sqlite=sqlite_table_sinks(sinks)
    )


def sqlite_url(directory: Path) -> str:
    """A SQLite database file in `directory`, migrated to head."""
    url = f"sqlite+aiosqlite:///{directory / 'contract.db'}"
    upgrade(url)
    return url


@asynccontextmanager
async def emptied(url: str, sinks: Sinks) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated database at `url`, with the sinks' tables and the stored
    offsets emptied first (a module's tests share one PostgreSQL database)."""
    engine = create_engine(url, pool_size=2)
    try:
        async with engine.begin() as conn:
            for sink in reversed(list(sinks.values())):
                await conn.execute(sink.table.delete())
            await conn.execute(tables.consumer_offsets.delete())
        yield engine
    finally:
        await engine.dispose()
