"""Database failures worth retrying become StoreUnavailable; bugs stay what they are."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import sqlalchemy.exc

from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.adapters.sql.errors import is_transient, store_errors
from pipeline.adapters.sql.migrate import upgrade
from pipeline.application.errors import (
    ConfigurationError,
    StoreRejected,
    StoreUnavailable,
    TransientError,
)
from pipeline.application.ports import Record, TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkRows
from pipeline.domain.sensors import Reading
from tests.projection import checkpoint_for


def wrapped(orig: Exception) -> sqlalchemy.exc.DBAPIError:
    """How SQLAlchemy hands a driver error to the adapter."""
    error = sqlalchemy.exc.DBAPIError("INSERT ...", {}, orig)
    error.__cause__ = orig
    return error


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.InterfaceError("cannot call Connection.execute(): connection is closed"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        sqlite3.OperationalError("database is locked"),
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached"),
        wrapped(asyncpg.exceptions.SerializationError("could not serialize access")),
        wrapped(sqlite3.OperationalError("database is locked")),
    ],
    ids=type,
)
def test_unavailability_timeouts_and_aborted_transactions_are_transient(
    error: Exception,
) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UndefinedTableError('relation "readings" does not exist'),
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        asyncpg.exceptions.InterfaceError("another operation is in progress"),
        sqlite3.OperationalError("no such table: readings"),
        wrapped(asyncpg.exceptions.UndefinedColumnError('column "x" does not exist')),
        ValueError("naive datetime"),
    ],
    ids=type,
)
def test_bugs_and_missing_schema_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_store_errors_raises_store_unavailable_from_the_original() -> None:
    original = asyncpg.exceptions.DeadlockDetectedError("deadlock detected")

    with pytest.raises(StoreUnavailable) as raised, store_errors("applying a batch"):
        raise original

    assert raised.value.__cause__ is original
    assert isinstance(raised.value, TransientError)
    assert "applying a batch" in str(raised.value)


def test_store_errors_lets_other_errors_through_unchanged() -> None:
    with pytest.raises(KeyError), store_errors("reading"):
        raise KeyError("bug")


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def unreachable_store() -> AsyncIterator[SqlSensorStore]:
    url = f"postgresql+asyncpg://pipeline:secret@127.0.0.1:{closed_port()}/pipeline"
    store = SqlSensorStore(create_engine(url, connect_timeout=2.0))
    yield store
    await store.close()


async def test_committing_to_an_unreachable_database_raises_store_unavailable(
    unreachable_store: SqlSensorStore,
) -> None:
    r = Reading(
        sensor_id="temp-1",
        sensor_type="temperature",
        value=20.0,
        unit="celsius",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        location="lab",
    )
    tp = TopicPartition("sensor-readings", 0)
    origin = Record(topic=tp.topic, partition=0, offset=0, key=None, value=b"", timestamp_ms=0)
    batch = CheckpointBatch(
        group_id="g",
        start_offsets={tp: 0},
        next_offsets={tp: 1},
        writes=[SinkRows(sink="readings", rows=[r], parts=[0], origins=[origin])],
    )

    with pytest.raises(StoreUnavailable):
        await checkpoint_for(unreachable_store).commit(batch)


async def test_queries_to_an_unreachable_database_raise_store_unavailable(
    unreachable_store: SqlSensorStore,
) -> None:
    with pytest.raises(StoreUnavailable):
        await unreachable_store.count_readings()
    with pytest.raises(StoreUnavailable):
        await unreachable_store.latest_readings()
    with pytest.raises(StoreUnavailable):
        await checkpoint_for(unreachable_store).stored_offsets(
            "g", [TopicPartition("sensor-readings", 0)]
        )


def test_migrating_an_unreachable_database_raises_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        upgrade(f"postgresql+asyncpg://pipeline:secret@127.0.0.1:{closed_port()}/pipeline")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CheckViolationError("violates check constraint"),
        asyncpg.exceptions.NotNullViolationError("null value in column"),
        asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00"),
        asyncpg.exceptions.NumericValueOutOfRangeError("value out of range"),
        wrapped(asyncpg.exceptions.CheckViolationError("violates check constraint")),
        wrapped(sqlite3.IntegrityError("CHECK constraint failed")),
    ],
    ids=type,
)
def test_data_the_database_refuses_is_store_rejected(error: Exception) -> None:
    with pytest.raises(StoreRejected, match="storing"), store_errors("storing"):
        raise error


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UndefinedTableError('relation "readings" does not exist'),
        wrapped(asyncpg.exceptions.UndefinedColumnError('column "m2" does not exist')),
        wrapped(sqlite3.OperationalError("no such table: readings")),
    ],
    ids=type,
)
def test_a_missing_table_says_to_migrate(error: Exception) -> None:
    with pytest.raises(ConfigurationError, match="pipeline db upgrade"), store_errors("storing"):
        raise error
