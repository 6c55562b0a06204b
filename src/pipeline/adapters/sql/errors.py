"""Telling database failures worth retrying from bugs, and translating them to StoreUnavailable."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import sqlalchemy.exc

from pipeline.application.errors import ConfigurationError, StoreRejected, StoreUnavailable

# SQLSTATE classes and codes after which the same transaction may succeed later:
# 08 connection exception, 40 transaction rollback (serialization failure, deadlock),
# 53 insufficient resources (too many connections, disk full), 57 operator intervention
# (statement timeout, admin shutdown, cannot connect now), 55P03 lock not available,
# 25006 read-only transaction (a standby promoted during failover).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")
_TRANSIENT_SQLSTATES = ("55P03", "25006")

# The data itself is refused (22 data exception: a value out of range, a NUL in text; 23
# integrity constraint violation): the same rows fail every time.
_REJECTED_SQLSTATE_CLASSES = ("22", "23")
# Undefined table, undefined column, invalid schema name: the database is not migrated.
_MISSING_SCHEMA_SQLSTATES = ("42P01", "42703", "3F000")
# Wrong user or password, no such database, no permission: the URL (or the grants) are wrong.
_LOGIN_SQLSTATES = ("28P01", "28000", "3D000", "42501")

_SQLITE_TRANSIENT_MESSAGES = ("locked", "busy", "disk i/o", "unable to open")

_TRANSIENT_TYPES = (
    # The pool is exhausted, or a pooled connection was found dead.
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
    # Refused, reset, unreachable, timed out.
    OSError,
    TimeoutError,
    # The protocol is stuck, typically after the server sent a FATAL error to an idle
    # connection (terminated backend, shutdown): that connection is lost, a new one works.
    asyncpg.exceptions.InternalClientError,
)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend(
            [
                current.__cause__,
                current.__context__,
                orig if isinstance(orig, BaseException) else None,
            ]
        )


def _is_transient_one(error: BaseException) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(fragment in message for fragment in _SQLITE_TRANSIENT_MESSAGES)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    ):
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, asyncpg.InterfaceError):
        # asyncpg raises a bare InterfaceError when the socket went away under a query.
        return "connection is closed" in str(error)
    return isinstance(error, _TRANSIENT_TYPES)


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or anything in its cause chain) means the database was unreachable,
    timed out or aborted the transaction, so that the same work may succeed later."""
    return any(_is_transient_one(e) for e in _chain(error))


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Translate database failures inside the block: transient ones into StoreUnavailable,
    data the database refuses (SQLSTATE classes 22 data exception, 23 integrity constraint)
    into StoreRejected, a missing table or column (an unmigrated database) and a refused
    login (wrong user, password or database name) into ConfigurationError; anything else
    propagates as it is."""
    try:
        yield
    except (StoreUnavailable, StoreRejected, ConfigurationError):
        raise
    except Exception as exc:
        if is_transient(exc):
            raise StoreUnavailable(f"{action} failed: {type(exc).__name__}: {exc}") from exc
        sqlstate = _sqlstate(exc)
        if (sqlstate is not None and sqlstate[:2] in _REJECTED_SQLSTATE_CLASSES) or any(
            isinstance(e, sqlite3.IntegrityError) for e in _chain(exc)
        ):
            raise StoreRejected(f"{action} failed: {_first_line(exc)}") from exc
        if sqlstate in _LOGIN_SQLSTATES:
            raise ConfigurationError(
                f"{action} failed: {_first_line(exc)} (check the user, password and database "
                "name in PIPELINE_DATABASE__URL, and that user's grants)"
            ) from exc
        if sqlstate in _MISSING_SCHEMA_SQLSTATES or any(
            isinstance(e, sqlite3.OperationalError) and "no such table" in str(e)
            for e in _chain(exc)
        ):
            raise ConfigurationError(
                f"{action} failed: {_first_line(exc)} (is the database migrated? "
                "run `pipeline db upgrade`)"
            ) from exc
        raise


def _sqlstate(error: BaseException) -> str | None:
    for current in _chain(error):
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str):
            return sqlstate
    return None


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
