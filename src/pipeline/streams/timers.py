"""Event-time timers per partition, for steps whose keys fall due at their own times.

Tumbling and hopping windows are aligned, so thousands of keys share one closing time and a
dict of closing times is the cheapest index. Session and sliding windows close at times of
their own (a record's time plus gap or grace), so they keep a heap instead: each key has at
most one live timer, the earliest time it needs attention; scheduling a later time for a
key that already has an earlier one costs one dict lookup (the common case: a session
extended by an in-order record). A key woken early finds nothing due and is scheduled again.
Timers are derived from state and rebuilt on restore, never stored.
"""

from __future__ import annotations

from collections.abc import Hashable
from heapq import heappop, heappush
from itertools import count


class Timers:
    """Per partition: which keys need attention at which watermark."""

    __slots__ = ("_heaps", "_next", "_seq")

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, int, Hashable]]] = {}
        self._next: dict[int, dict[Hashable, int]] = {}
        self._seq = count()  # orders equal times without comparing keys

    def schedule(self, part: int, key: Hashable, due: int) -> None:
        """Wake `key` once the watermark of `part` reaches `due` (or earlier, if it already
        has an earlier timer)."""
        pending = self._next.get(part)
        if pending is None:
            pending = self._next[part] = {}
            self._heaps[part] = []
        current = pending.get(key)
        if current is None or due < current:
            pending[key] = due
            heappush(self._heaps[part], (due, next(self._seq), key))

    def due(self, part: int, watermark: int) -> list[Hashable]:
        """The keys of `part` whose timer is at or before `watermark`, in timer order; their
        timers are spent (schedule them again if they still need one)."""
        heap = self._heaps.get(part)
        if not heap or heap[0][0] > watermark:
            return []
        pending = self._next[part]
        out: list[Hashable] = []
        while heap and heap[0][0] <= watermark:
            due, _, key = heappop(heap)
            if pending.get(key) == due:
                del pending[key]
                out.append(key)
        return out

    def release(self, part: int) -> None:
        """Forget `part`'s timers."""
        self._heaps.pop(part, None)
        self._next.pop(part, None)
