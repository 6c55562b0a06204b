"""`InMemoryChangelogTable`: a table materialized from a topic of `InMemoryEventLog`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from typing import Generic, TypeVar

from pipeline.adapters.memory.log_consumer import InMemoryLogReader
from pipeline.adapters.memory.log_state import LogState
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import TopicPartition
from pipeline.application.ports.tables import KeyDecoder, ValueDecoder
from pipeline.application.tables import TableContents

K = TypeVar("K")
V = TypeVar("V")


class InMemoryChangelogTable(Generic[K, V]):
    """A `ChangelogTable` over an in-memory topic: `start` applies every record the topic
    holds, then a task applies each new record as soon as it is published."""

    def __init__(
        self,
        state: LogState,
        topic: str,
        *,
        decode_key: KeyDecoder[K],
        decode_value: ValueDecoder[V],
    ) -> None:
        self._state = state
        self._topic = topic
        self._contents = TableContents(topic, decode_key=decode_key, decode_value=decode_value)
        self._reader: InMemoryLogReader | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Apply what the topic holds, then follow it."""
        log = self._state.topics.get(self._topic)
        if log is None:
            raise ConfigurationError(f"changelog topic {self._topic!r} does not exist")
        ends = {}
        for number, partition in enumerate(log.partitions):
            for record in partition.records:
                self._contents.apply(record)
            ends[TopicPartition(self._topic, number)] = len(partition.records)
        self._reader = InMemoryLogReader(
            self._state, f"changelog-table-{uuid.uuid4().hex[:12]}", ends
        )
        self._task = asyncio.get_running_loop().create_task(
            self._follow(self._reader), name=f"table {self._topic}"
        )

    def get(self, key: K) -> V | None:
        """The key's latest value, None when absent or deleted."""
        return self._contents.get(key)

    def snapshot(self) -> Mapping[K, V]:
        """Every key's latest value, as of now."""
        return self._contents.snapshot()

    @property
    def rejected(self) -> int:
        """Records without a key, or that the decoders rejected."""
        return self._contents.rejected

    async def close(self) -> None:
        """Stop following the topic."""
        if self._reader is not None:
            await self._reader.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self, reader: InMemoryLogReader) -> None:
        while True:
            for record in await reader.poll(10_000, 3600.0):
                self._contents.apply(record)
