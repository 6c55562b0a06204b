"""The readings sink COPYs a batch straight into `readings`, feeding COPY as it sends (the
rows' tuples are generated one by one while asyncpg encodes them, never held as a list
beside the batch's rows); a batch holding a reading already stored goes through the staging
table, and so do the next `STAGED_AFTER_CONFLICT` batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from pipeline.adapters.sql.postgres_sinks import STAGED_AFTER_CONFLICT, PostgresReadingsSink
from pipeline.application.ports.records import Record
from pipeline.domain.sensor_columns import row_of
from tests.avro_events import reading


class CopyingDriver:
    """What the sink uses of an asyncpg connection; keeps what COPY was given, and fails a
    COPY into `readings` on the primary key while `stored` is set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.given: Iterable[tuple[Any, ...]] | None = None
        self.copied: list[tuple[Any, ...]] = []
        self.stored = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.calls.append("savepoint")
        try:
            yield
        except BaseException:
            self.calls.append("rollback to savepoint")
            raise
        self.calls.append("release savepoint")

    async def execute(self, statement: str) -> str:
        self.calls.append(statement.split(maxsplit=1)[0])
        return f"INSERT 0 {len(self.copied)}"

    async def copy_records_to_table(
        self, name: str, *, records: Iterable[tuple[Any, ...]], columns: list[str]
    ) -> str:
        self.calls.append(f"copy {name}")
        self.given = records
        self.copied = list(records)
        if name == "readings" and self.stored:
            raise asyncpg.UniqueViolationError('duplicate key value violates "pk_readings"')
        return f"COPY {len(self.copied)}"


def batch(n: int = 3) -> tuple[list[Any], list[Record]]:
    readings = [reading(i) for i in range(n)]
    origins = [
        Record(topic="sensor-readings", partition=1, offset=10 + i, key=None, value=b"",
               timestamp_ms=0)
        for i in range(n)
    ]  # fmt: skip
    return [row_of(r) for r in readings], origins


async def test_readings_are_copied_into_their_table_as_they_are_generated() -> None:
    rows, origins = batch()
    driver = CopyingDriver()

    result = await PostgresReadingsSink().write(driver, rows, origins)

    assert driver.calls == ["savepoint", "copy readings", "release savepoint"]
    assert driver.given is not None
    assert iter(driver.given) is driver.given  # an iterator, not a list held whole
    assert [(c[0], c[1], c[8], c[9], c[10]) for c in driver.copied] == [
        (r.sensor_id, r.timestamp, "sensor-readings", 1, 10 + i) for i, r in enumerate(rows)
    ]
    assert result.written == 3


async def test_a_batch_holding_a_stored_reading_goes_through_the_stage_and_so_do_the_next() -> None:
    rows, origins = batch()
    driver = CopyingDriver()
    sink = PostgresReadingsSink()
    driver.stored = True

    result = await sink.write(driver, rows, origins)

    assert driver.calls == [
        "savepoint",
        "copy readings",
        "rollback to savepoint",
        "CREATE",
        "copy readings_sink_stage",
        "INSERT",
    ]
    assert result.written == 3
    driver.stored = False
    for _ in range(STAGED_AFTER_CONFLICT):
        driver.calls.clear()
        await sink.write(driver, rows, origins)
        assert driver.calls == ["copy readings_sink_stage", "INSERT"]
    driver.calls.clear()
    await sink.write(driver, rows, origins)
    assert driver.calls == ["savepoint", "copy readings", "release savepoint"]
