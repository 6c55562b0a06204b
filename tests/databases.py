"""Throwaway PostgreSQL databases for tests that need a real one, each migrated to head."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
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
async def fresh_database(prefix: str = "test") -> AsyncIterator[str]:
    """Create a uniquely named database, migrate it to head, yield its asyncpg SQLAlchemy URL,
    and drop it afterwards."""
    app_url = make_url(require_service(DATABASE))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}" OWNER "{app_url.username}"')
    finally:
        await admin.close()
    url = app_url.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        admin = await asyncpg.connect(_admin_dsn())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
