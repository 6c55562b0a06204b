"""Throwaway PostgreSQL databases for tests that need a real one, each migrated to head."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

from pipeline.adapters.sql.migrate import upgrade
from tests.services import DATABASE, PG_ADMIN, require_service


def _admin_dsn() -> str:
    """A libpq DSN of a role allowed to create databases."""
    import os  # noqa: PLC0415

    admin = os.environ.get(PG_ADMIN)
    if admin:
        return admin
    url = make_url(require_service(DATABASE)).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(prefix: str = "test", *, migrate: bool = True) -> AsyncIterator[str]:
    """Create a uniquely named database, migrate it to head (unless not `migrate`), yield its
    asyncpg SQLAlchemy URL, and drop it afterwards."""
    app_url = make_url(require_service(DATABASE))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}" OWNER "{app_url.username}"')
    finally:
        await admin.close()
    url = app_url.set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        admin = await asyncpg.connect(_admin_dsn())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def module_database(prefix: str) -> Iterator[str]:
    """`fresh_database` for a module-scoped (synchronous) fixture: created and dropped on an
    event loop of its own. Use as `yield from module_database("name")`."""
    loop = asyncio.new_event_loop()
    database = fresh_database(prefix)
    try:
        url = loop.run_until_complete(database.__aenter__())
        try:
            yield url
        finally:
            loop.run_until_complete(database.__aexit__(None, None, None))
    finally:
        loop.close()
