"""Keyed state: what a stateful step remembers, per task (source partition) and key.

The engine keeps every step's state in memory while its partitions are assigned and tells
the runtime, once per batch, which entries changed (`StateChange`, already serialized, so a
later batch mutating an accumulator cannot change what an earlier checkpoint writes). The
runtime writes those changes to a durable backing in the same transaction as the batch's
outputs and offsets, and hands them back (`restore`) when a partition is assigned again.
"""

from __future__ import annotations

import pickle
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

STREAM_TIME_STEP = "__stream_time__"
"""The reserved step whose state is each source partition's stream time, kept with the
rest so that lateness is judged the same after a restore as before it."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """One entry of one step's state in one partition, as it is after a batch: `value` None
    means the entry was deleted. Key and value are pickled (protocol 5)."""

    step: str
    part: int
    key: bytes
    value: bytes | None


def dumps(value: object) -> bytes:
    """Serialize a state key or value."""
    return pickle.dumps(value, protocol=5)


def loads(data: bytes) -> Any:
    """Deserialize a state key or value written by `dumps`."""
    return pickle.loads(data)  # noqa: S301 - our own state, written by this engine


class KeyedState:
    """One step's state: per partition, a dict from key to value, and which keys changed
    since the last checkpoint."""

    __slots__ = ("_dirty", "parts", "step")

    def __init__(self, step: str) -> None:
        self.step = step
        self.parts: dict[int, dict[Hashable, Any]] = {}
        self._dirty: dict[int, set[Hashable]] = {}

    def part(self, part: int) -> dict[Hashable, Any]:
        """The entries of `part` (created empty on first use)."""
        entries = self.parts.get(part)
        if entries is None:
            entries = self.parts[part] = {}
        return entries

    def dirty(self, part: int) -> set[Hashable]:
        """The keys of `part` changed since the last checkpoint: add to it on every change."""
        keys = self._dirty.get(part)
        if keys is None:
            keys = self._dirty[part] = set()
        return keys

    def changed(self, part: int) -> bool:
        """Whether any entry of `part` changed since the last checkpoint."""
        return bool(self._dirty.get(part))

    def changes(self) -> list[StateChange]:
        """The changed entries, serialized as they are now; forgets them."""
        out: list[StateChange] = []
        step = self.step
        for part, keys in self._dirty.items():
            entries = self.parts.get(part, {})
            for key in keys:
                value = entries.get(key, _ABSENT)
                out.append(
                    StateChange(step, part, dumps(key), None if value is _ABSENT else dumps(value))
                )
        self._dirty.clear()
        return out

    def restore(self, part: int, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Replace `part`'s entries with serialized ones read back from the backing."""
        self.parts[part] = {loads(key): loads(value) for key, value in entries}
        self._dirty.pop(part, None)

    def release(self, part: int) -> None:
        """Forget `part` (revoked): its state lives on in the backing."""
        self.parts.pop(part, None)
        self._dirty.pop(part, None)

    def size(self) -> int:
        """How many entries are held, over all partitions."""
        return sum(len(entries) for entries in self.parts.values())


_ABSENT = object()
