"""Telling database failures worth retrying from bugs, and translating them to StoreUnavailable."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import sqlalchemy.exc

from pipeline.application.errors import StoreUnavailable

# SQLSTATE classes and codes after which the same transaction may succeed later:
# 08 connection exception, 40 transaction rollback (serialization failure, deadlock),
# 53 insufficient resources (too many connections, disk full), 57 operator intervention
# (statement timeout, admin shutdown, cannot connect now), 55P03 lock not available,
# 25006 read-only transaction (a standby promoted during failover).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")
_TRANSIENT_SQLSTATES = ("55P03", "25006")

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
    """Turn transient database failures inside the block into StoreUnavailable."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise StoreUnavailable(f"{action} failed: {type(exc).__name__}: {exc}") from exc
        raise
