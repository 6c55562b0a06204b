"""The dead-letter part of the store contract: dead letters are stored with the batch that
rejected them (idempotently, by where the record was read), then found, shown and purged.

Run against the in-memory store, SQLite and a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.adapters.memory import InMemorySensorStore
from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.adapters.sql.migrate import upgrade
from pipeline.adapters.sql.tables import metadata
from pipeline.application.ports import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterStore,
    SensorStore,
    TopicPartition,
)
from pipeline.application.ports.checkpoint import CheckpointBatch
from tests.databases import module_database
from tests.projection import checkpoint_for

TOPIC = "sensor-readings"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def letter(offset: int, partition: int = 0, **fields: Any) -> DeadLetter:
    values: dict[str, Any] = {
        "topic": TOPIC,
        "partition": partition,
        "offset": offset,
        "key": b"temp-0001",
        "value": b"\x01not avro",
        "timestamp_ms": 1_772_366_400_123,
        "error_class": "bad_magic_byte",
        "message": "value does not start with magic byte 0",
        "stack_trace": "Traceback (most recent call last):\n  ...",
        "attempts": 1,
        "first_failed_at": T0,
        "last_failed_at": T0,
        "worker_id": "host:123",
        "group_id": "sensors",
    }
    values.update(fields)
    return DeadLetter(**values)


async def store_batch(store: SensorStore, *letters: DeadLetter) -> None:
    """Commit a batch whose records all became dead letters, as a job does."""
    next_offsets: dict[TopicPartition, int] = {}
    for x in letters:
        next_offsets[x.source] = max(next_offsets.get(x.source, 0), x.offset + 1)
    await checkpoint_for(store).commit(
        CheckpointBatch(
            group_id="sensors", start_offsets={}, next_offsets=next_offsets, dead_letters=letters
        )
    )


def dead_letters_of(store: SensorStore) -> DeadLetterStore:
    found = getattr(store, "dead_letters", None)
    assert isinstance(found, DeadLetterStore)
    return found


class DeadLetterStoreContract:
    """What every store does with dead letters. Subclasses provide the `store` fixture."""

    async def test_a_dead_letter_is_stored_with_its_batch_exactly_as_given(
        self, store: SensorStore
    ) -> None:
        original = letter(7, key=None, value=None, stack_trace=None)

        await store_batch(store, original)

        assert await dead_letters_of(store).dead_letter(TOPIC, 0, 7) == original
        stored = await checkpoint_for(store).stored_offsets("sensors", [TopicPartition(TOPIC, 0)])
        assert stored == {TopicPartition(TOPIC, 0): 8}

    async def test_storing_the_same_batch_twice_keeps_one_dead_letter_per_record(
        self, store: SensorStore
    ) -> None:
        await store_batch(store, letter(1), letter(2))
        await store_batch(store, letter(1, attempts=5), letter(2))

        found = await dead_letters_of(store).find_dead_letters(DeadLetterFilter())

        assert [(x.offset, x.attempts) for x in found] == [(1, 1), (2, 1)]

    async def test_a_missing_dead_letter_is_none(self, store: SensorStore) -> None:
        assert await dead_letters_of(store).dead_letter(TOPIC, 0, 99) is None

    async def test_filters_select_by_topic_error_class_time_and_offset_range(
        self, store: SensorStore
    ) -> None:
        await store_batch(
            store,
            letter(0),
            letter(1, error_class="reading_out_of_range"),
            letter(2, last_failed_at=T0 + timedelta(hours=1)),
            letter(3, partition=1),
        )
        await store_batch(store, letter(0, topic="other"))
        dlq = dead_letters_of(store)

        async def offsets(**query: Any) -> list[tuple[str, int, int]]:
            found = await dlq.find_dead_letters(DeadLetterFilter(**query))
            return [(x.topic, x.partition, x.offset) for x in found]

        assert await offsets(topic="other") == [("other", 0, 0)]
        assert await offsets(error_class="reading_out_of_range") == [(TOPIC, 0, 1)]
        assert await offsets(since=T0 + timedelta(minutes=30)) == [(TOPIC, 0, 2)]
        assert await offsets(topic=TOPIC, until=T0 + timedelta(minutes=30)) == [
            (TOPIC, 0, 0),
            (TOPIC, 0, 1),
            (TOPIC, 1, 3),
        ]
        assert await offsets(topic=TOPIC, partition=0, from_offset=1, to_offset=3) == [
            (TOPIC, 0, 1),
            (TOPIC, 0, 2),
        ]

    async def test_find_returns_at_most_limit_in_topic_partition_offset_order(
        self, store: SensorStore
    ) -> None:
        await store_batch(store, letter(5, partition=1), letter(9), letter(3))

        found = await dead_letters_of(store).find_dead_letters(DeadLetterFilter(), limit=2)

        assert [(x.partition, x.offset) for x in found] == [(0, 3), (0, 9)]

    async def test_purge_deletes_only_what_matches_and_counts_it(self, store: SensorStore) -> None:
        await store_batch(store, letter(0), letter(1, error_class="unknown_schema_id"), letter(2))
        dlq = dead_letters_of(store)

        purged = await dlq.purge_dead_letters(DeadLetterFilter(error_class="bad_magic_byte"))

        assert purged == 2
        remaining = await dlq.find_dead_letters(DeadLetterFilter())
        assert [x.offset for x in remaining] == [1]


class TestInMemoryDeadLetters(DeadLetterStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[SensorStore]:
        store = InMemorySensorStore()
        yield store
        await store.close()


class TestSqliteDeadLetters(DeadLetterStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SensorStore]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'dlq.db'}"
        upgrade(url)
        store = SqlSensorStore(create_engine(url))
        yield store
        await store.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """One throwaway database for this module, created and migrated by Alembic."""
    yield from module_database("contract_dead_letters")


@pytest.mark.integration
class TestPostgresDeadLetters(DeadLetterStoreContract):
    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[SensorStore]:
        store = SqlSensorStore(create_engine(postgres_url, pool_size=2))
        async with store.engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {', '.join(metadata.tables)}"))
        yield store
        await store.close()
