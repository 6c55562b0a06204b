"""Choosing the SQL checkpoint store of an engine's database, with its sink writers.

store = sql_checkpoint_store(
    engine, postgres=postgres_sensor_sinks(), sqlite=sqlite_sensor_sinks()
)
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.sql.postgres_checkpoint import PostgresCheckpointStore, PostgresSink
from pipeline.adapters.sql.sqlite_checkpoint import SqliteCheckpointStore, SqliteSink
from pipeline.application.errors import ConfigurationError


def sql_checkpoint_store(
    engine: AsyncEngine,
    *,
    postgres: Mapping[str, PostgresSink],
    sqlite: Mapping[str, SqliteSink],
) -> PostgresCheckpointStore | SqliteCheckpointStore:
    """The checkpoint store of `engine`'s dialect, with that dialect's sink writers bound by
    sink name (each mapping should name the same sinks)."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return PostgresCheckpointStore(engine, postgres)
    if dialect == "sqlite":
        return SqliteCheckpointStore(engine, sqlite)
    raise ConfigurationError(f"the checkpoint store supports PostgreSQL and SQLite, not {dialect}")
