"""Running the Alembic migrations programmatically, from the CLI or from async code.

Where the migration scripts are: in a source checkout (and an editable install) they are the
top-level `migrations/` directory of the repository; a built wheel carries the same directory
as `pipeline/_migrations` (hatch `force-include` in pyproject.toml). `script_location()` finds
whichever exists, so nothing depends on the current working directory.

Alembic (and Mako under it) is imported only to migrate: the check every worker and API
process makes on start (`require_current`) reads the revisions' identifiers from the scripts'
source and the database's from `alembic_version`, which takes a fraction of the time.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pipeline.adapters.sql.engine import async_url
from pipeline.adapters.sql.errors import store_errors
from pipeline.application.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config  # noqa: PLC0415 - only to migrate

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
    from alembic import command  # noqa: PLC0415 - only to migrate

    config = alembic_config(url)
    with store_errors("migrating the database"):
        _outside_event_loop(lambda: command.upgrade(config, revision))


def head() -> str:
    """The newest revision of the migration scripts: the one no other script revises,
    read from the scripts' `revision` and `down_revision` assignments without running them."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in sorted((script_location() / "versions").glob("*.py")):
        assigned = _assignments(script)
        if "revision" in assigned:
            revisions.add(str(assigned["revision"]))
            down = assigned.get("down_revision")
            if isinstance(down, str):
                revised.add(down)
            elif isinstance(down, tuple | list):
                revised.update(map(str, down))
    heads = sorted(revisions - revised)
    if len(heads) != 1:
        raise ConfigurationError(
            f"the migration scripts must have one head revision, not {heads or 'none'}"
        )
    return heads[0]


def _assignments(script: Path) -> dict[str, object]:
    """The module-level `revision` and `down_revision` literals of a migration script."""
    found: dict[str, object] = {}
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        target: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and value:
            found[target.id] = ast.literal_eval(value)
    return found


def current(url: str) -> str | None:
    """The revision the database at `url` is at (None before the first migration)."""

    async def connect_and_read() -> str | None:
        engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
        try:
            return await _revision(engine)
        finally:
            await engine.dispose()

    with store_errors("reading the database revision"):
        return _outside_event_loop(lambda: asyncio.run(connect_and_read()))


async def _revision(engine: AsyncEngine) -> str | None:
    def read(connection: sa.Connection) -> str | None:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        revision = rows.scalar_one_or_none()
        return None if revision is None else str(revision)

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def require_current(database: str | AsyncEngine) -> None:
    """Return when the database at `database` (a URL, or the engine the process will use)
    is at the newest revision; otherwise raise a ConfigurationError that says to run
    `pipeline db upgrade`. Processes that only read or write the tables (the API, the
    workers, the DLQ tool) check this on start rather than fail later on a missing table.
    Given its engine, the check opens the connection the process then uses (a worker's start
    connects once, not twice)."""
    if isinstance(database, str):
        revision = await asyncio.to_thread(current, database)
    else:
        with store_errors("reading the database revision"):
            revision = await _revision(database)
    newest = head()
    if revision != newest:
        raise ConfigurationError(
            f"the database is at revision {revision or 'none'}, not {newest}: "
            "run `pipeline db upgrade` first"
        )


def _outside_event_loop(work: Callable[[], T]) -> T:
    # Alembic's env.py drives the async engine with asyncio.run, which refuses to start on a
    # thread that already runs a loop.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alembic") as executor:
        return executor.submit(work).result()
