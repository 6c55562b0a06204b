"""`TableContents`: what a changelog table holds, and how a record changes it. Shared by
the changelog table adapters, which only differ in how they read the topic.

`GlobalTables`: the global tables of a job (`Job.global_table`), read by every worker from
their topics' beginning and bound to the job before it runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import structlog

from pipeline.application.errors import ConfigurationError
from pipeline.application.ports.records import Record
from pipeline.application.ports.tables import (
    ChangelogTable,
    ChangelogTables,
    KeyDecoder,
    TableCodec,
    ValueDecoder,
)
from pipeline.streams import Job

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

log = structlog.get_logger(__name__)


class TableContents(Generic[K, V]):
    """The latest value of every key of a changelog, record by record."""

    def __init__(
        self, topic: str, *, decode_key: KeyDecoder[K], decode_value: ValueDecoder[V]
    ) -> None:
        self._topic = topic
        self._decode_key = decode_key
        self._decode_value = decode_value
        self._rows: dict[K, V] = {}
        self.rejected = 0

    def apply(self, record: Record) -> None:
        """Apply one record: upsert, delete (tombstone), or reject (counted, logged once per
        record, the table unchanged: a bad row must not stop the job that joins with it)."""
        if record.key is None:
            self._reject(record, "the record has no key")
            return
        try:
            key = self._decode_key(record.key)
            value = None if record.value is None else self._decode_value(record.value)
        except Exception as error:  # noqa: BLE001 - any decoder failure rejects the record
            self._reject(record, f"{type(error).__name__}: {error}")
            return
        if value is None:
            self._rows.pop(key, None)
        else:
            self._rows[key] = value

    def get(self, key: K) -> V | None:
        """The key's latest value."""
        return self._rows.get(key)

    def snapshot(self) -> Mapping[K, V]:
        """A copy of every key's latest value."""
        return dict(self._rows)

    def _reject(self, record: Record, reason: str) -> None:
        self.rejected += 1
        log.warning(
            "changelog record ignored",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )


class GlobalTables:
    """The started global tables of one job run: close them when the run ends."""

    def __init__(self, tables: list[ChangelogTable[Any, Any]]) -> None:
        self._tables = tables

    @classmethod
    async def start(
        cls, job: Job, source: object, codecs: Mapping[str, TableCodec[Any, Any]]
    ) -> GlobalTables:
        """Read each global table of `job` from `source` (an event log that materializes
        changelog tables) up to the current end of its topic, and bind it to the job; they
        follow their topics until `close`. A job with none needs nothing of `source`."""
        if not job.global_tables:
            return cls([])
        missing = sorted(set(job.global_tables) - set(codecs))
        if missing:
            raise ConfigurationError(f"job {job.name!r}: no table codec for topics {missing}")
        if not isinstance(source, ChangelogTables):
            raise ConfigurationError(
                f"job {job.name!r} joins global tables; {type(source).__name__} cannot "
                "materialize changelog tables"
            )
        started = cls([])
        try:
            for topic, spec in job.global_tables.items():
                codec = codecs[topic]
                table: ChangelogTable[Any, Any] = source.changelog_table(
                    topic, decode_key=codec.decode_key, decode_value=codec.decode_value
                )
                started._tables.append(table)
                await table.start()
                spec.lookup = table.get
                log.info("global table read", job=job.name, topic=topic, rows=len(table.snapshot()))
        except BaseException:
            await started.close()
            raise
        return started

    async def close(self) -> None:
        """Stop following the topics."""
        for table in self._tables:
            await table.close()
        self._tables.clear()


async def with_global_tables(
    job: Job,
    source: object,
    codecs: Mapping[str, TableCodec[Any, Any]],
    run: Callable[[], Awaitable[T]],
) -> T:
    """`run()` with the global tables of `job` started and bound (see `GlobalTables.start`),
    closed when it returns."""
    tables = await GlobalTables.start(job, source, codecs)
    try:
        return await run()
    finally:
        await tables.close()
