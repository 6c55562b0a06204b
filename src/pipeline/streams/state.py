"""Keyed state: what a stateful step remembers, per task (source partition) and key.

The engine keeps every step's state in memory while its partitions are assigned and tells
the runtime, once per batch, which entries changed (`StateChange`, already serialized, so a
later batch mutating an accumulator cannot change what an earlier checkpoint writes). The
runtime writes those changes to a durable backing in the same transaction as the batch's
outputs and offsets, and hands them back (`restore`) when a partition is assigned again.

A restore decodes every key (a step looks its entries up by key) but no value: a value is
decoded when a step first reads it (`RestoredEntries`), so a large state is back in about
the time its keys take to decode, and an entry that is never read before it is written
back keeps its bytes. Keys and values are pickled (protocol 5), the encoding every version
has written.
"""

from __future__ import annotations

import gc
import pickle
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
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


_PENDING: Any = object()
"""The value of a restored entry not decoded yet (its bytes are kept beside)."""

_first = itemgetter(0)
_second = itemgetter(1)
_get = dict.get
_getitem = dict.__getitem__
_setitem = dict.__setitem__
_delitem = dict.__delitem__
_pop = dict.pop
_popitem = dict.popitem
_setdefault = dict.setdefault
_values = dict.values
_items = dict.items
_iter = dict.__iter__
_eq = dict.__eq__


class RestoredEntries(dict[Hashable, Any]):
    """One partition's entries as restored: a dict whose values are decoded when first
    read (`[]`, `get`, `pop`, `setdefault`, `popitem`; `items`, `values`, copies and
    comparisons decode them all first); `del` drops one unread. `encoded` holds the bytes
    of the values not decoded yet, whose place in the dict holds a marker: one shared
    object, and plain bytes beside, so that the cyclic collector has nothing more to
    track than a dict of decoded values."""

    __slots__ = ("encoded",)

    def __init__(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        # A dict's items (a changelog restore's latest value per key) are read from the
        # dict itself: no pair is built or taken apart.
        mapping = getattr(pairs, "mapping", None)
        if isinstance(mapping, Mapping):
            raw_keys: Iterable[bytes] = mapping
            raw_values: Iterable[bytes] = mapping.values()
        else:
            pairs = pairs if isinstance(pairs, Sequence) else list(pairs)
            raw_keys, raw_values = map(_first, pairs), map(_second, pairs)
        # Decoding creates an object or more per key: the cyclic collector, which a burst
        # of new objects sets off again and again, has nothing to find among them.
        with _collector_paused():
            keys = map(pickle.loads, raw_keys)  # our own state, as `loads`
            encoded = dict(zip(keys, raw_values, strict=True))
        # From a dict, fromkeys reuses the hashes it holds: each key is hashed once.
        super().__init__(dict.fromkeys(encoded, _PENDING))
        self.encoded: dict[Hashable, bytes] = encoded

    def _decode(self, key: Hashable) -> Any:
        value = loads(self.encoded.pop(key))
        _setitem(self, key, value)
        return value

    def _decode_all(self) -> None:
        for key in list(self.encoded):
            if _get(self, key) is _PENDING:
                self._decode(key)
        self.encoded.clear()  # what is left was overwritten unread

    def __getitem__(self, key: Hashable) -> Any:
        value = _getitem(self, key)
        return self._decode(key) if value is _PENDING else value

    def get(self, key: Hashable, default: Any = None) -> Any:
        value = _get(self, key, default)
        return self._decode(key) if value is _PENDING else value

    def pop(self, key: Hashable, *default: Any) -> Any:
        value = _pop(self, key, *default)
        return loads(self.encoded.pop(key)) if value is _PENDING else value

    def __delitem__(self, key: Hashable) -> None:
        _delitem(self, key)
        self.encoded.pop(key, None)

    def popitem(self) -> tuple[Hashable, Any]:
        key, value = _popitem(self)
        return key, loads(self.encoded.pop(key)) if value is _PENDING else value

    def setdefault(self, key: Hashable, default: Any = None) -> Any:
        value = _setdefault(self, key, default)
        return self._decode(key) if value is _PENDING else value

    def values(self) -> Any:
        self._decode_all()
        return _values(self)

    def items(self) -> Any:
        self._decode_all()
        return _items(self)

    def __iter__(self) -> Iterator[Hashable]:
        # Overridden, so that dict(entries) and {**entries} copy through __getitem__.
        return _iter(self)

    def copy(self) -> dict[Hashable, Any]:
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        self._decode_all()
        if isinstance(other, RestoredEntries):
            other._decode_all()
        return _eq(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # a dict: unhashable

    def __repr__(self) -> str:
        return repr(self.copy())


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
        """The changed entries, serialized as they are now; forgets them. An entry never
        read since its restore is written back as the bytes it was restored from."""
        out: list[StateChange] = []
        step = self.step
        for part, keys in self._dirty.items():
            entries = self.parts.get(part, {})
            encoded = entries.encoded if type(entries) is RestoredEntries else _NONE_ENCODED
            for key in keys:
                value = _get(entries, key, _ABSENT)
                if value is _PENDING:
                    out.append(StateChange(step, part, dumps(key), encoded[key]))
                    continue
                if encoded:
                    encoded.pop(key, None)  # overwritten or deleted unread: its bytes go
                if value is _ABSENT:
                    out.append(StateChange(step, part, dumps(key), None))
                else:
                    out.append(StateChange(step, part, dumps(key), dumps(value)))
        self._dirty.clear()
        parts = self.parts
        for part in [p for p, e in parts.items() if type(e) is RestoredEntries and not e.encoded]:
            parts[part] = dict(_items(parts[part]))  # every value read: a plain dict is faster
        return out

    def restore(self, part: int, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Replace `part`'s entries with serialized ones read back from the backing (values
        decoded when first read)."""
        restored = RestoredEntries(entries)
        self.parts[part] = restored if restored else {}
        self._dirty.pop(part, None)

    def release(self, part: int) -> None:
        """Forget `part` (revoked): its state lives on in the backing."""
        self.parts.pop(part, None)
        self._dirty.pop(part, None)

    def size(self) -> int:
        """How many entries are held, over all partitions."""
        return sum(len(entries) for entries in self.parts.values())


_ABSENT = object()
_NONE_ENCODED: dict[Hashable, bytes] = {}
"""The `encoded` of a partition that was not restored, or is a plain dict again."""
