"""The ChangelogTable contract, run against the in-memory log's tables and Kafka's.

A table is read from the beginning of its topic, keeps the latest value of every key, drops
keys on tombstones, follows the topic after `start`, and ignores (and counts) records it
cannot use. Kafka tests use uniquely named topics and delete them afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import ChangelogTable, ChangelogTables, EventLog, TopicSpec
from tests.services import KAFKA, require_service

FOLLOW_S = 10.0
"""Longest a started table may take to show a record published after `start`."""


def decode_key(key: bytes) -> str:
    return key.decode()


def decode_value(value: bytes) -> int | None:
    """An integer; "deleted" (a value-level tombstone) is None; anything else is refused."""
    if value == b"deleted":
        return None
    return int(value)


async def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + FOLLOW_S
    while not check():
        assert time.monotonic() < deadline, "the table did not follow the topic in time"
        await asyncio.sleep(0.05)


class ChangelogTableContract:
    """The behaviour every changelog table has; subclasses provide `log` and `topic`."""

    partitions = 3

    @pytest.fixture
    async def topic(self, log: EventLog) -> str:
        name = f"table-{uuid4().hex}"
        await log.ensure_topics(
            [TopicSpec(name=name, partitions=self.partitions, config={"cleanup.policy": "compact"})]
        )
        return name

    @pytest.fixture
    async def open_table(
        self, log: EventLog
    ) -> AsyncIterator[Callable[[str], ChangelogTable[str, int]]]:
        assert isinstance(log, ChangelogTables)
        opened: list[ChangelogTable[str, int]] = []

        def open_table(topic: str) -> ChangelogTable[str, int]:
            table = log.changelog_table(topic, decode_key=decode_key, decode_value=decode_value)
            opened.append(table)
            return table

        yield open_table
        for table in opened:
            await table.close()

    async def publish(
        self, log: EventLog, topic: str, *items: tuple[str | None, bytes | None]
    ) -> None:
        for key, value in items:
            await log.publish(topic, None if key is None else key.encode(), value)
        await log.flush()

    async def test_start_reads_the_topic_from_the_beginning_and_keeps_the_latest_value_per_key(
        self, log: EventLog, topic: str, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        await self.publish(
            log, topic, ("a", b"1"), ("b", b"2"), ("a", b"3"), ("c", b"4"), ("b", b"5")
        )
        table = open_table(topic)

        await table.start()

        assert table.snapshot() == {"a": 3, "b": 5, "c": 4}
        assert table.get("a") == 3
        assert table.get("z") is None

    async def test_a_tombstone_removes_its_key(
        self, log: EventLog, topic: str, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        await self.publish(log, topic, ("a", b"1"), ("b", b"2"), ("a", None), ("b", b"deleted"))
        table = open_table(topic)

        await table.start()

        assert table.snapshot() == {}
        assert table.rejected == 0

    async def test_a_key_deleted_then_written_again_is_back(
        self, log: EventLog, topic: str, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        await self.publish(log, topic, ("a", b"1"), ("a", None), ("a", b"7"))
        table = open_table(topic)

        await table.start()

        assert table.get("a") == 7

    async def test_after_start_the_table_follows_changes_within_seconds(
        self, log: EventLog, topic: str, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        await self.publish(log, topic, ("a", b"1"), ("b", b"2"))
        table = open_table(topic)
        await table.start()

        await self.publish(log, topic, ("a", b"10"), ("b", None), ("c", b"30"))

        await eventually(lambda: table.snapshot() == {"a": 10, "c": 30})

    async def test_start_on_an_empty_topic_gives_an_empty_table_that_then_fills(
        self, log: EventLog, topic: str, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        table = open_table(topic)
        await table.start()
        assert table.snapshot() == {}

        await self.publish(log, topic, ("a", b"1"))

        await eventually(lambda: table.get("a") == 1)

    async def test_records_the_decoders_refuse_change_nothing_and_are_counted(
        self, log: EventLog, topic: str, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        await self.publish(log, topic, ("a", b"1"), ("a", b"not a number"), ("b", b"x"))
        table = open_table(topic)

        await table.start()

        assert table.snapshot() == {"a": 1}
        assert table.rejected == 2

    async def test_records_without_a_key_change_nothing_and_are_counted(
        self, log: EventLog, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        # A compacted Kafka topic refuses records without a key; a plain topic holds them.
        topic = f"table-plain-{uuid4().hex}"
        await log.ensure_topics([TopicSpec(name=topic, partitions=1)])
        await self.publish(log, topic, ("a", b"1"), (None, b"2"))
        table = open_table(topic)

        await table.start()

        assert table.snapshot() == {"a": 1}
        assert table.rejected == 1

    async def test_a_topic_that_does_not_exist_is_a_configuration_error(
        self, log: EventLog, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        table = open_table(f"missing-{uuid4().hex}")

        with pytest.raises(ConfigurationError, match=r"does not exist|cannot be read"):
            await table.start()

    async def test_two_tables_over_one_topic_each_read_all_of_it(
        self, log: EventLog, topic: str, open_table: Callable[[str], ChangelogTable[str, int]]
    ) -> None:
        await self.publish(log, topic, *((f"k{i}", str(i).encode()) for i in range(50)))
        first, second = open_table(topic), open_table(topic)

        await asyncio.gather(first.start(), second.start())

        assert first.snapshot() == second.snapshot() == {f"k{i}": i for i in range(50)}


class TestInMemoryChangelogTable(ChangelogTableContract):
    @pytest.fixture
    async def log(self) -> InMemoryEventLog:
        return InMemoryEventLog()


@pytest.mark.integration
class TestKafkaChangelogTable(ChangelogTableContract):
    @pytest.fixture
    async def log(self) -> AsyncIterator[KafkaEventLog]:
        bootstrap = require_service(KAFKA)
        log = KafkaEventLog(bootstrap, timeout=20.0)
        yield log
        await log.close()

    @pytest.fixture
    async def topic(self, log: EventLog) -> AsyncIterator[str]:
        name = f"table-{uuid4().hex}"
        await log.ensure_topics(
            [TopicSpec(name=name, partitions=self.partitions, config={"cleanup.policy": "compact"})]
        )
        yield name
        admin = AdminClient({"bootstrap.servers": require_service(KAFKA)})
        for future in admin.delete_topics([name], operation_timeout=10).values():
            future.result()

    async def test_start_on_empty_partitions_waits_for_no_fetch(self, topic: str) -> None:
        # A broker holding each empty fetch a minute: only a table that knows the
        # partitions are empty from their offsets starts before it answers.
        log = KafkaEventLog(
            require_service(KAFKA), timeout=20.0, consumer_config={"fetch.wait.max.ms": "60000"}
        )
        table = log.changelog_table(topic, decode_key=decode_key, decode_value=decode_value)
        try:
            await asyncio.wait_for(table.start(), 20)

            assert table.snapshot() == {}
        finally:
            await table.close()
            await log.close()
