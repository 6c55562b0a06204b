"""Declared table sinks behave alike in memory, on SQLite and on real PostgreSQL: rows keyed by
the table's primary key, duplicates ignored or replaced as declared, a growing column guarding
against partial views, JSON columns, and everything committed with the batch's offsets (or
not at all)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore, Undo
from pipeline.adapters.memory.dead_letters import InMemoryDeadLetterStore
from pipeline.adapters.memory.table_sinks import DeclaredRows, memory_table_sinks
from pipeline.adapters.sql import create_engine
from pipeline.adapters.sql.checkpoint import sql_checkpoint_store
from pipeline.adapters.sql.migrate import upgrade
from pipeline.adapters.sql.table_sinks import (
    OnConflict,
    TableSink,
    postgres_table_sinks,
    sqlite_table_sinks,
)
from pipeline.adapters.sql.tables import JSON, UtcDateTime
from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import (
    CheckpointStore,
    SinkResult,
)
from tests.databases import module_database
from tests.sink_batches import SinkBatches

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
P0 = TopicPartition("events", 0)

test_tables = sa.MetaData()
events = sa.Table(
    "sink_contract_events",
    test_tables,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("amount", sa.Double, nullable=False),
    sa.Column("time", UtcDateTime, nullable=False),
    sa.Column("tags", JSON, nullable=False),
)
windows = sa.Table(
    "sink_contract_windows",
    test_tables,
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("window_start", UtcDateTime, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("total", sa.Double, nullable=False),
)


@dataclass(frozen=True)
class Event:
    event_id: str
    amount: float
    time: datetime
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Window:
    tag: str
    window_start: datetime
    count: int
    total: float


DECLARED: dict[str, TableSink[Any]] = {
    "events": TableSink(
        events,
        columns=("event_id", "amount", "time", "tags"),
        values=lambda e: (e.event_id, e.amount, e.time, list(e.tags)),
    ),
    "windows": TableSink(
        windows,
        columns=("tag", "window_start", "count", "total"),
        values=lambda w: (w.tag, w.window_start, w.count, w.total),
        on_conflict=OnConflict.REPLACE,
        grows="count",
    ),
}


def event(n: int, amount: float = 1.0) -> Event:
    return Event(f"e{n}", amount, T0 + timedelta(seconds=n), (f"t{n % 2}", "all"))


def window(tag: str, count: int, total: float, minute: int = 0) -> Window:
    return Window(tag, T0 + timedelta(minutes=minute), count, total)


class World:
    def __init__(self, store: CheckpointStore, read: Any) -> None:
        self.store = store
        self.batches = SinkBatches(store, P0, group_id="contract")
        self._read = read

    async def commit(self, **rows: list[Any]) -> dict[str, int]:
        """Commit `rows` by sink name as one batch of partition P0; the written counts."""
        result = await self.batches.commit(rows)
        return {name: result.written.get(name, 0) for name in rows}

    async def events(self) -> list[Event]:
        found: list[Event] = await self._read("events")
        return sorted(found, key=lambda e: e.event_id)

    async def windows(self) -> list[Window]:
        found: list[Window] = await self._read("windows")
        return sorted(found, key=lambda w: (w.tag, w.window_start))


class TableSinkContract:
    @pytest.fixture
    def world(self) -> World:
        raise NotImplementedError

    async def test_rows_are_stored_by_key_and_a_duplicate_is_ignored(self, world: World) -> None:
        written = await world.commit(events=[event(1), event(2), event(1, amount=9.0)])
        again = await world.commit(events=[event(2, amount=7.0), event(3)])

        assert written == {"events": 2}
        assert again == {"events": 1}
        assert await world.events() == [event(1), event(2), event(3)]

    async def test_replacing_rows_keep_the_last_of_a_batch_and_count_only_changes(
        self, world: World
    ) -> None:
        first = await world.commit(windows=[window("a", 1, 2.0), window("a", 2, 5.0)])
        same = await world.commit(windows=[window("a", 2, 5.0)])
        more = await world.commit(windows=[window("a", 3, 6.0), window("b", 1, 1.0)])

        assert (first, same, more) == ({"windows": 1}, {"windows": 0}, {"windows": 2})
        assert await world.windows() == [window("a", 3, 6.0), window("b", 1, 1.0)]

    async def test_a_row_with_less_of_the_growing_column_never_replaces_more(
        self, world: World
    ) -> None:
        await world.commit(windows=[window("a", 5, 10.0)])

        partial = await world.commit(windows=[window("a", 2, 3.0)])

        assert partial == {"windows": 0}
        assert await world.windows() == [window("a", 5, 10.0)]

    async def test_json_and_time_columns_round_trip(self, world: World) -> None:
        late = Event("e9", 2.5, T0 + timedelta(microseconds=123456), ("x", "y", "z"))

        await world.commit(events=[late])

        [stored] = await world.events()
        assert stored == late
        assert stored.time.tzinfo is not None


class SinkFailure(RuntimeError):
    """A sink failing mid-commit."""


class FailingSink:
    def write(self, rows: Sequence[Any], origins: Sequence[Any], undo: Undo) -> SinkResult:
        raise SinkFailure("the disk under this sink is full")


class TestMemoryTableSinks(TableSinkContract):
    @pytest.fixture
    def world(self) -> World:
        rows: DeclaredRows = {}
        sinks = memory_table_sinks(DECLARED, rows) | {"failing": FailingSink()}
        store = InMemoryCheckpointStore(sinks, dead_letters=InMemoryDeadLetterStore())

        async def read(name: str) -> list[Any]:
            table = DECLARED[name].table.name
            return list(rows.get(table, {}).values())

        return World(store, read)

    async def test_a_failed_commit_takes_back_inserted_and_replaced_rows(
        self, world: World
    ) -> None:
        await world.commit(windows=[window("a", 1, 2.0)])

        with pytest.raises(SinkFailure):
            await world.commit(
                events=[event(1)], windows=[window("a", 4, 8.0), window("b", 1, 1.0)], failing=[1]
            )

        assert await world.events() == []
        assert await world.windows() == [window("a", 1, 2.0)]


def _sql_world(engine: Any) -> World:
    store = sql_checkpoint_store(
        engine, postgres=postgres_table_sinks(DECLARED), sqlite=sqlite_table_sinks(DECLARED)
    )

    async def read(name: str) -> list[Any]:
        async with engine.connect() as conn:
            if name == "events":
                result = await conn.execute(sa.select(events))
                return [Event(r.event_id, r.amount, r.time, tuple(r.tags)) for r in result]
            result = await conn.execute(sa.select(windows))
            return [Window(r.tag, r.window_start, r.count, r.total) for r in result]

    return World(store, read)


class TestSqliteTableSinks(TableSinkContract):
    @pytest.fixture
    async def world(self, tmp_path: Path) -> AsyncIterator[World]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'sinks.db'}"
        upgrade(url)
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(test_tables.create_all)
        yield _sql_world(engine)
        await engine.dispose()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    yield from module_database("contract_table_sinks")


@pytest.mark.integration
class TestPostgresTableSinks(TableSinkContract):
    @pytest.fixture
    async def world(self, postgres_url: str) -> AsyncIterator[World]:
        engine = create_engine(postgres_url, pool_size=2)
        async with engine.begin() as conn:
            await conn.run_sync(test_tables.drop_all)
            await conn.run_sync(test_tables.create_all)
            await conn.execute(sa.text("TRUNCATE consumer_offsets"))
        yield _sql_world(engine)
        await engine.dispose()


def test_a_declaration_must_cover_the_primary_key_and_name_real_columns() -> None:
    with pytest.raises(ValueError, match="primary key"):
        TableSink(windows, columns=("tag", "count", "total"), values=lambda w: ())
    with pytest.raises(ValueError, match="no column colour"):
        TableSink(events, columns=("event_id", "colour"), values=lambda e: ())
    with pytest.raises(ValueError, match="grows"):
        TableSink(events, columns=("event_id", "amount"), values=lambda e: (), grows="amount")
