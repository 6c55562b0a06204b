"""Building the async engine, and the time type shared by PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from pipeline.adapters.sql import async_url, create_engine
from pipeline.adapters.sql.checkpoint import sql_checkpoint_store
from pipeline.adapters.sql.tables import UtcDateTime
from pipeline.application.errors import ConfigurationError


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
        ("sqlite:///pipeline.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite"),
    ],
)
def test_urls_get_their_async_driver_and_keep_the_rest(given: str, driver: str) -> None:
    url = async_url(given)

    assert url.drivername == driver
    assert url.set(drivername="x") == make_url(given).set(drivername="x")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db"])
def test_a_database_without_an_async_adapter_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        create_engine(url)


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", sqlite_busy_timeout_ms=1234)
    try:
        async with engine.connect() as conn:
            mode = await conn.scalar(sa.text("PRAGMA journal_mode"))
            timeout = await conn.scalar(sa.text("PRAGMA busy_timeout"))
    finally:
        await engine.dispose()

    assert (mode, timeout) == ("wal", 1234)


def test_the_checkpoint_store_refuses_an_engine_of_another_database() -> None:
    oracle = type("FakeAsyncEngine", (), {"dialect": type("Dialect", (), {"name": "oracle"})()})

    with pytest.raises(ConfigurationError, match="oracle"):
        sql_checkpoint_store(oracle(), postgres={}, sqlite={})  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", [postgresql.dialect(), sqlite.dialect()])
def test_times_are_stored_in_utc_whatever_their_offset(dialect: sa.Dialect) -> None:
    paris = timezone(timedelta(hours=1))
    stored = UtcDateTime().process_bind_param(datetime(2026, 1, 1, 13, 0, tzinfo=paris), dialect)

    assert stored is not None
    assert stored.replace(tzinfo=UTC) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 1), sqlite.dialect())


def test_naive_times_read_from_sqlite_are_utc() -> None:
    read = UtcDateTime().process_result_value(datetime(2026, 1, 1, 12, 0, 0, 5), sqlite.dialect())

    assert read == datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=UTC)
    assert read is not None
    assert read.tzinfo is UTC
