"""Sliding windows: for every record, the aggregate of its key's last `size` of event time.

A record at time t defines the window [t − size, t], **both ends inclusive**: it holds the
key's records whose time u satisfies t − size ≤ u ≤ t (as a `Window`, half-open like every
window, that is `Window(t − size, t + 1)`; a result's event time is t). Records at the same
time define the same window, so a key has one window per distinct record time. Like every
window it closes when the watermark reaches its end plus `grace`: t + 1 ms + grace, that is
once the watermark has passed t + grace (with no grace, a record's own arrival does not
close its window).

A record is late, and goes to the late output, when its own window has closed (t + grace <
watermark). Every record in a window's range that is not late arrives before that window
closes (u ≤ t), so each window's result is exactly the aggregate of the accepted records in
its range — it never depends on where batches ended or on arrival order. (Kafka Streams
still adds such a record to the later windows that are open; that makes a result depend on
when each record arrived, and a record whose own window is gone would vanish silently when
no later window holds it.)

The key's accepted records are buffered in state and each window is computed when it is
emitted, so no accumulator per window is kept: work is the records in the window per
emission. A record is evicted once no window that can still be emitted needs it (the
watermark passes its time + size + grace).

Emission. `.final()`: each window once, when it closes. `.updates()`: after each batch, the
current result of every window the batch changed — the windows of its records, and the
existing windows an out-of-order record fell into (`final` False); nothing at close.

Replays. A replay that starts reading a partition in the middle of its log (`Task`'s
`partial`) may lack records before its horizon, so it emits only the windows that start at
or after it (t − size ≥ horizon): exactly the ones a run over the whole log has.

State: one entry per buffered record, `(key, time, n) → value` (n numbers the key's records
at that time), written once and deleted once; plus `"closed" → the watermark` up to which
windows have closed. The in-memory buffers per key and the timers are rebuilt on restore.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Mapping
from typing import Any, cast

from pipeline.streams.items import NO_TIME, Item, Window, Windowed, duration_millis
from pipeline.streams.job import Node
from pipeline.streams.operators import Context, StatefulOperator
from pipeline.streams.timers import Timers
from pipeline.streams.windows import Sliding

CLOSED = "closed"
"""The state key of the watermark up to which a partition's windows have closed (record
entries are (key, time, n) tuples, so it cannot collide with one)."""


class Buffer:
    """One key's buffered records in time order (ties in arrival order)."""

    __slots__ = ("times", "values")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.values: list[Any] = []


class SlidingWindowOperator(StatefulOperator):
    """Buffers each key's records and emits the window ending at each of them."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        kind: Sliding = node.params["kind"]
        self.size = duration_millis(kind.size)
        self.close = duration_millis(kind.grace) + 1
        """The window of a record at t closes when the watermark reaches t + close."""
        self.aggregate = node.params["aggregate"]
        self.final_only: bool = node.params["final_only"]
        self.timers = Timers()
        self.buffers: dict[int, dict[Hashable, Buffer]] = {}
        self.closed: dict[int, int] = {}
        """Per partition, the watermark up to which windows have closed."""
        self.touched: dict[int, dict[Hashable, list[int]]] = {}
        """Updates mode: per partition and key, the times of the batch's accepted records."""

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        assert self.state is not None
        close = self.close
        schedule = self.timers.schedule
        tracking = not self.final_only
        late: list[Item[Any, Any]] = []
        last_part = None
        entries: dict[Any, Any] = {}
        dirty: set[Any] = set()
        buffers: dict[Hashable, Buffer] = {}
        touched: dict[Hashable, list[int]] = {}
        for item in items:
            part = item.part
            if part != last_part:
                last_part = part
                entries = self.state.part(part)
                dirty = self.state.dirty(part)
                buffers = self.buffers.setdefault(part, {})
                touched = self.touched.setdefault(part, {})
            t, key = item.time, item.key
            if t + close <= item.wm:  # its own window has closed
                late.append(item)
                continue
            buffer = buffers.get(key)
            if buffer is None:
                buffer = buffers[key] = Buffer()
            times = buffer.times
            if not times or t > times[-1]:
                n = 0
                times.append(t)
                buffer.values.append(item.value)
            else:
                at = bisect_right(times, t)
                n = at - bisect_left(times, t, 0, at)
                times.insert(at, t)
                buffer.values.insert(at, item.value)
            skey = (key, t, n)
            entries[skey] = item.value
            dirty.add(skey)
            if n == 0:
                schedule(part, key, t + close)
            if tracking:
                accepted = touched.get(key)
                if accepted is None:
                    touched[key] = [t]
                else:
                    accepted.append(t)
        self.send_late(late, ctx)

    def finish(self, ctx: Context, watermarks: Mapping[int, int]) -> None:
        out: list[Item[Any, Any]] = []
        if self.touched:
            self._updates(out, watermarks)
        for part, wm in watermarks.items():
            self._close(part, wm, out)
        self.emit(out, ctx)

    def _window(self, buffer: Buffer, t: int) -> Any:
        """The result of the window ending at `t`."""
        aggregate = self.aggregate
        add = aggregate.add
        times = buffer.times
        acc = aggregate.initial()
        for value in buffer.values[bisect_left(times, t - self.size) : bisect_right(times, t)]:
            acc = add(acc, value)
        return aggregate.result(acc)

    def _updates(self, out: list[Item[Any, Any]], watermarks: Mapping[int, int]) -> None:
        """The current result of each window the batch changed: the windows at the times of
        its accepted records and those up to `size` after them."""
        size = self.size
        for part, touched in self.touched.items():
            wm = watermarks.get(part)
            if wm is None:
                continue
            buffers = self.buffers[part]
            # Windows of records before this may lack records before a replay's horizon.
            first = self.horizons.get(part, NO_TIME) + size
            for key, accepted in touched.items():
                buffer = buffers[key]
                times = buffer.times
                accepted.sort()
                last = first - 1
                for u in accepted:
                    at = bisect_left(times, max(u, last + 1))
                    end = bisect_right(times, u + size)
                    while at < end:
                        t = times[at]
                        window = Window(t - size, t + 1)
                        value = Windowed(key, window, self._window(buffer, t), False)
                        out.append(Item(part, key, t, value, None, wm))
                        at = bisect_right(times, t, at, end)
                    last = max(last, u + size)
        self.touched.clear()

    def _close(self, part: int, wm: int, out: list[Item[Any, Any]]) -> None:
        """Emit the windows `wm` closes (final mode) and evict what no window needs."""
        assert self.state is not None
        previous = self.closed.get(part, NO_TIME)
        if wm <= previous:
            return
        size, close, final_only = self.size, self.close, self.final_only
        due = self.timers.due(part, wm)
        if not due:
            return
        entries = self.state.part(part)
        dirty = self.state.dirty(part)
        buffers = self.buffers[part]
        # Windows of records before this may lack records before a replay's horizon.
        first = self.horizons.get(part, NO_TIME) + size
        for key in due:
            buffer = buffers.get(key)
            if buffer is None:
                continue
            times = buffer.times
            # One window per distinct record time, closed once the watermark passes t + grace.
            closing = times[bisect_right(times, previous - close) : bisect_right(times, wm - close)]
            self.windows_closed += len(set(closing))
            if final_only:
                at = bisect_right(times, max(previous - close, first - 1))
                end = bisect_right(times, wm - close)
                while at < end:
                    t = times[at]
                    window = Window(t - size, t + 1)
                    value = Windowed(key, window, self._window(buffer, t), True)
                    out.append(Item(part, key, t, value, None, wm))
                    at = bisect_right(times, t, at, end)
            evict = bisect_right(times, wm - size - close)
            if evict:
                n = 0
                for i in range(evict):
                    n = n + 1 if i and times[i] == times[i - 1] else 0
                    skey = (key, times[i], n)
                    del entries[skey]
                    dirty.add(skey)
                del times[:evict]
                del buffer.values[:evict]
            if times:
                self._schedule_next(part, key, buffer, wm)
            else:
                del buffers[key]
        # Windows close only when a key is due, so this is all a restore needs to know which
        # buffered windows have left; with nothing buffered there is nothing to know.
        self.closed[part] = wm
        if buffers:
            entries[CLOSED] = wm
        else:
            entries.pop(CLOSED, None)
        dirty.add(CLOSED)

    def _schedule_next(self, part: int, key: Hashable, buffer: Buffer, closed: int) -> None:
        """Wake `key` when its next window closes or its first record can be evicted."""
        times = buffer.times
        due = times[0] + self.size + self.close
        at = bisect_right(times, closed - self.close)
        if at < len(times):
            due = min(due, times[at] + self.close)
        self.timers.schedule(part, key, due)

    def restored(self, part: int) -> None:
        assert self.state is not None
        self.timers.release(part)
        entries = self.state.part(part)
        closed = entries.get(CLOSED, NO_TIME)
        self.closed[part] = closed
        grouped: dict[Hashable, list[tuple[int, int, Any]]] = {}
        for skey, value in entries.items():
            if skey != CLOSED:
                key, t, n = cast("tuple[Hashable, int, int]", skey)
                grouped.setdefault(key, []).append((t, n, value))
        buffers: dict[Hashable, Buffer] = {}
        for key, records in grouped.items():
            records.sort(key=_time_and_number)
            buffer = buffers[key] = Buffer()
            buffer.times = [t for t, _, _ in records]
            buffer.values = [value for _, _, value in records]
        self.buffers[part] = buffers
        for key, buffer in buffers.items():
            self._schedule_next(part, key, buffer, closed)

    def release(self, part: int) -> None:
        super().release(part)
        self.timers.release(part)
        self.buffers.pop(part, None)
        self.closed.pop(part, None)
        self.touched.pop(part, None)


def _time_and_number(record: tuple[int, int, Any]) -> tuple[int, int]:
    return record[0], record[1]
