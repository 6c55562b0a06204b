"""The readings sink feeds PostgreSQL's COPY as it sends: the rows' tuples are generated one
by one while asyncpg encodes them, never held as a list beside the batch's rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.adapters.sql.postgres_sinks import PostgresReadingsSink
from pipeline.application.ports.records import Record
from pipeline.domain.sensor_columns import row_of
from tests.avro_events import reading


class CopyingDriver:
    """What the sink uses of an asyncpg connection; keeps what COPY was given."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.given: Iterable[tuple[Any, ...]] | None = None
        self.copied: list[tuple[Any, ...]] = []

    async def execute(self, statement: str) -> str:
        self.statements.append(statement)
        return f"INSERT 0 {len(self.copied)}"

    async def copy_records_to_table(
        self, name: str, *, records: Iterable[tuple[Any, ...]], columns: list[str]
    ) -> None:
        self.given = records
        self.copied = list(records)


async def test_readings_are_generated_for_copy_as_it_sends_them() -> None:
    readings = [reading(i) for i in range(3)]
    origins = [
        Record(topic="sensor-readings", partition=1, offset=10 + i, key=None, value=b"",
               timestamp_ms=0)
        for i in range(3)
    ]  # fmt: skip
    driver = CopyingDriver()

    result = await PostgresReadingsSink().write(driver, [row_of(r) for r in readings], origins)

    assert driver.given is not None
    assert iter(driver.given) is driver.given  # an iterator, not a list held whole
    assert [(c[0], c[1], c[8], c[9], c[10]) for c in driver.copied] == [
        (r.sensor_id, r.timestamp, "sensor-readings", 1, 10 + i) for i, r in enumerate(readings)
    ]
    assert result.written == 3
