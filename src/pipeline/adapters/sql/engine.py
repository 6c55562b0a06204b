"""Building the async SQLAlchemy engine for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pipeline.application.errors import ConfigurationError

WRITE_TRANSACTION = {"pipeline_write": True}
"""Execution options for a connection that is going to write: on SQLite its transaction
starts with BEGIN IMMEDIATE, taking the write lock up front (see `_configure_sqlite`)."""

_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def async_url(url: str | URL) -> URL:
    """`url` with its async driver: `postgresql://` becomes `postgresql+asyncpg://`,
    `sqlite://` becomes `sqlite+aiosqlite://`; any other driver is a ConfigurationError."""
    parsed = make_url(url) if isinstance(url, str) else url
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigurationError(
            f"unsupported database URL scheme {parsed.drivername!r}; "
            "use postgresql+asyncpg:// or sqlite+aiosqlite://"
        )
    return parsed.set(drivername=driver)


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 10.0,
    pool_recycle: float = 1800.0,
    pool_pre_ping: bool = False,
    connect_timeout: float = 10.0,
    command_timeout: float = 60.0,
    sqlite_busy_timeout_ms: int = 5000,
    application_name: str = "pipeline",
    echo: bool = False,
) -> AsyncEngine:
    """An async engine for `url` (PostgreSQL via asyncpg, or SQLite via aiosqlite).

    PostgreSQL connections name themselves `application_name` in pg_stat_activity and give up
    on a statement after `command_timeout` seconds. `pool_pre_ping` is off: it costs a round
    trip per checkout (measured: 30% of the CPU of an API read). Without it, the first
    statement on a connection a database restart has dropped fails as StoreUnavailable, and
    SQLAlchemy then invalidates every older pooled connection: the worker retries the batch,
    an API read answers one 503 with Retry-After. SQLite runs
    in WAL mode (readers do not block the writer) and waits up to `sqlite_busy_timeout_ms`
    for a lock instead of failing."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_busy_timeout_ms, echo)
    connect_args: dict[str, Any] = {
        "server_settings": {"application_name": application_name},
        "timeout": connect_timeout,
        "command_timeout": command_timeout,
    }
    return create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # Recycling keeps connections from outliving server-side idle timeouts and failovers.
        pool_recycle=pool_recycle,
        pool_pre_ping=pool_pre_ping,
        connect_args=connect_args,
        echo=echo,
    )


def _sqlite_engine(url: URL, busy_timeout_ms: int, echo: bool) -> AsyncEngine:
    engine = create_async_engine(url, echo=echo)
    _configure_sqlite(engine.sync_engine, busy_timeout_ms, in_memory=_is_memory(url))
    return engine


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def _configure_sqlite(engine: sa.Engine, busy_timeout_ms: int, *, in_memory: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is turned off so that `_on_begin` decides how a
        # transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # With WAL, NORMAL survives an application crash; the log can be replayed
                # after a power loss, which is what the stored consumer offsets are for.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A deferred BEGIN that reads and then writes can fail with SQLITE_BUSY without
        # waiting; writers take the lock first and queue on busy_timeout instead.
        write = connection.get_execution_options().get("pipeline_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
