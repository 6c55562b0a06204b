"""Running the Alembic migrations: from sync code, async code, the alembic CLI config."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from pydantic import SecretStr

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.adapters.sql import SqlSensorStore
from pipeline.adapters.sql.migrate import alembic_config, current, head, script_location, upgrade
from pipeline.application.errors import ConfigurationError
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import DatabaseSettings, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'pipeline.db'}"


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_migration_scripts_are_found_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    location = script_location()

    assert (location / "env.py").is_file()
    assert head() == "0012"


def test_the_head_read_from_the_scripts_is_alembics_head() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))

    assert head() == scripts.get_current_head()


def test_a_new_database_has_no_revision_until_upgraded(sqlite_url: str) -> None:
    assert current(sqlite_url) is None

    upgrade(sqlite_url)

    assert current(sqlite_url) == head()
    assert {"readings", "reading_aggregates_1m", "alerts", "consumer_offsets"} <= table_names(
        sqlite_url
    )


def test_upgrading_twice_changes_nothing(sqlite_url: str) -> None:
    upgrade(sqlite_url)

    upgrade(sqlite_url)

    assert current(sqlite_url) == head()


async def test_upgrade_runs_from_a_worker_thread_of_async_code(sqlite_url: str) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)

    assert await asyncio.to_thread(current, sqlite_url) == head()


async def test_upgrade_called_directly_on_the_event_loop_still_works(sqlite_url: str) -> None:
    # Blocks the loop for the duration, but must not fail with "asyncio.run() cannot be
    # called from a running event loop".
    upgrade(sqlite_url)

    assert current(sqlite_url) == head()


def test_the_migration_downgrades_to_an_empty_database(sqlite_url: str) -> None:
    upgrade(sqlite_url)

    command.downgrade(alembic_config(sqlite_url), "base")

    assert current(sqlite_url) is None
    assert table_names(sqlite_url) <= {"alembic_version"}


def test_the_alembic_ini_at_the_repository_root_takes_the_url_from_the_environment(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_DATABASE__URL", sqlite_url)
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False  # leave the test run's logging alone

    command.upgrade(config, "head")

    assert current(sqlite_url) == head()


def test_a_percent_encoded_password_survives_the_alembic_config() -> None:
    url = "postgresql+asyncpg://app:p%40ss%25word@db.example:5432/pipeline"

    config = alembic_config(url)

    assert config.get_main_option("sqlalchemy.url") == url


async def test_a_workers_schema_check_opens_the_connection_its_store_then_uses(
    sqlite_url: str,
) -> None:
    upgrade(sqlite_url)
    settings = Settings(database=DatabaseSettings(url=SecretStr(sqlite_url)))

    pipeline = await bootstrap(
        settings, log=InMemoryEventLog(), registry=InMemorySchemaRegistry(), require_schema=True
    )
    try:
        store = pipeline.store
        assert isinstance(store, SqlSensorStore)
        # Checked, and pooled for the first batch: no second connection at the start.
        assert store.engine.pool.checkedin() == 1
    finally:
        await pipeline.aclose()


async def test_a_worker_refuses_a_database_behind_the_newest_revision(sqlite_url: str) -> None:
    settings = Settings(database=DatabaseSettings(url=SecretStr(sqlite_url)))

    with pytest.raises(ConfigurationError, match="pipeline db upgrade"):
        await bootstrap(
            settings, log=InMemoryEventLog(), registry=InMemorySchemaRegistry(), require_schema=True
        )
