"""`TableContents`: what a changelog table holds, and how a record changes it. Shared by
the changelog table adapters, which only differ in how they read the topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

import structlog

from pipeline.application.ports import Record
from pipeline.application.ports.tables import KeyDecoder, ValueDecoder

K = TypeVar("K")
V = TypeVar("V")

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
