"""Running the Alembic migrations programmatically, from the CLI or from async code.

Where the migration scripts are: in a source checkout (and an editable install) they are the
top-level `migrations/` directory of the repository; a built wheel carries the same directory
as `pipeline/_migrations` (hatch `force-include` in pyproject.toml). `script_location()` finds
whichever exists, so nothing depends on the current working directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from pipeline.adapters.sql.engine import async_url
from pipeline.adapters.sql.errors import store_errors
from pipeline.application.errors import ConfigurationError

T = TypeVar("T")

_PACKAGE_DIR = Path(__file__).resolve().parents[2]  # .../pipeline
_CANDIDATES = (
    _PACKAGE_DIR / "_migrations",  # installed from a wheel
    _PACKAGE_DIR.parents[1] / "migrations",  # src/pipeline -> the repository root
)


def script_location() -> Path:
    """The directory holding Alembic's env.py and versions/."""
    for candidate in _CANDIDATES:
        if (candidate / "env.py").is_file():
            return candidate
    searched = ", ".join(str(c) for c in _CANDIDATES)
    raise ConfigurationError(f"Alembic migrations not found (searched {searched})")


def alembic_config(url: str) -> Config:
    """An Alembic config for the pipeline's migrations against `url` (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    rendered = async_url(url).render_as_string(hide_password=False)
    # Config values go through ConfigParser interpolation: a %-escaped password must survive.
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`.

    Synchronous. Call it directly where no event loop runs (the CLI), or from async code as
    `await asyncio.to_thread(upgrade, url)`; called on a thread whose loop is running, it runs
    the migration on a worker thread and blocks until it is done."""
    config = alembic_config(url)
    with store_errors("migrating the database"):
        _outside_event_loop(lambda: command.upgrade(config, revision))


def head() -> str:
    """The newest revision of the migration scripts."""
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if revision is None:
        raise ConfigurationError("the migration scripts have no head revision")
    return revision


def current(url: str) -> str | None:
    """The revision the database at `url` is at (None before the first migration)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async def connect_and_read() -> str | None:
        engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    with store_errors("reading the database revision"):
        return _outside_event_loop(lambda: asyncio.run(connect_and_read()))


def _outside_event_loop(work: Callable[[], T]) -> T:
    # Alembic's env.py drives the async engine with asyncio.run, which refuses to start on a
    # thread that already runs a loop.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alembic") as executor:
        return executor.submit(work).result()


async def require_current(url: str) -> None:
    """Return when the database at `url` is at the newest revision; otherwise raise a
    ConfigurationError that says to run `pipeline db upgrade`. Processes that only read or
    write the tables (the API, the workers, the DLQ tool) check this on start rather than fail
    later on a missing table."""
    revision = await asyncio.to_thread(current, url)
    newest = head()
    if revision != newest:
        raise ConfigurationError(
            f"the database is at revision {revision or 'none'}, not {newest}: "
            "run `pipeline db upgrade` first"
        )
