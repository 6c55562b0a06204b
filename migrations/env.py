"""Alembic environment for the pipeline's database, on an async engine.

The URL comes from the Alembic config (`sqlalchemy.url`, set programmatically by
`pipeline.adapters.sql.migrate`), else from PIPELINE_DATABASE__URL, else a local SQLite file.
A caller may also hand over an open synchronous connection as
`config.attributes["connection"]`.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from pipeline.adapters.sql.engine import async_url
from pipeline.adapters.sql.tables import metadata

DEFAULT_URL = "sqlite+aiosqlite:///pipeline.db"

config = context.config

# Only the `alembic` command line configures logging; when the application runs migrations
# (no ini file) its own logging setup is left alone.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def database_url() -> str:
    url = (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("PIPELINE_DATABASE__URL")
        or DEFAULT_URL
    )
    return async_url(url).render_as_string(hide_password=False)


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


# Held for the migration's transaction on PostgreSQL: two processes migrating one database at
# once (two workers or `pipeline bench` runs started together) take turns, and the second finds
# the schema at head instead of failing on a table the first has just created.
MIGRATION_LOCK = 0x706970656C696E65  # "pipeline"


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    # Callers inside async code run this in a worker thread (see migrate.py), where no event
    # loop is running, so asyncio.run is always allowed here.
    asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
