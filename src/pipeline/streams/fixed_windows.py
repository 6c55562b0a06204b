"""Tumbling and hopping windows: fixed windows aligned to the epoch."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from itertools import groupby
from operator import itemgetter
from typing import Any, cast

from pipeline.streams.items import NO_TIME, Item, Window, Windowed, duration_millis
from pipeline.streams.job import Node
from pipeline.streams.operators import Context, StatefulOperator
from pipeline.streams.windows import Hopping, Tumbling


class FixedWindowOperator(StatefulOperator):
    """Keeps one accumulator per (key, window start) until the window closes.

    Windows touched by a batch are remembered in arrival order (`touched`), marked changed
    in the state once per batch, and (in updates mode) emitted in that order: after every
    batch, or with `emit_every`, gathered in `pending` per partition and emitted once in
    each interval of that much wall-clock time (the partitions' intervals staggered, so that
    their emissions fall into different batches), and when the worker stops (then
    every window is emitted once more when it closes); a window held back is marked in the
    state.

    State: `(key, start) → accumulator`; with `emit_every`, also `(key, start, HELD) →
    True` for each window whose latest update has not been emitted, so that a restore knows
    which updates the sinks still miss (a mark is written when a window is first changed
    after an emission, and deleted when it is emitted: twice per window and interval, not
    per batch). Derived and rebuilt on restore: per partition, the windows by closing time,
    so closing is a walk over the few distinct closing times (windows are aligned, so
    thousands of keys share one), and the windows held back."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        kind: Tumbling | Hopping = node.params["kind"]
        self.size = duration_millis(kind.size)
        self.advance = self.size if isinstance(kind, Tumbling) else duration_millis(kind.advance)
        self.grace = duration_millis(kind.grace)
        self.aggregate = node.params["aggregate"]
        self.final_only: bool = node.params["final_only"]
        self.every: int | None = node.params.get("emit_every")
        self.emitted_in: dict[int, int] = {}
        """Per partition, the interval of wall-clock time (see `_interval`) in which its
        `pending` windows were last emitted."""
        # part → the windows changed since they were last emitted (with `every`)
        self.pending: dict[int, dict[tuple[Hashable, int], None]] = {}
        # part → close time → the (key, start) pairs closing then (dicts keep arrival order,
        # so results come out in a deterministic order)
        self.closing: dict[int, dict[int, dict[tuple[Hashable, int], None]]] = {}
        self.touched: dict[int, dict[tuple[Hashable, int], None]] = {}

    def push(  # noqa: PLR0915 - one loop per batch, inlined: it runs once per record
        self, items: list[Item[Any, Any]], ctx: Context
    ) -> None:
        assert self.state is not None
        size, advance, grace = self.size, self.advance, self.grace
        tumbling = size == advance
        aggregate = self.aggregate
        add, initial = aggregate.add, aggregate.initial
        late: list[Item[Any, Any]] = []
        last_part = None
        entries: dict[Any, Any] = {}
        closing: dict[int, dict[tuple[Hashable, int], None]] = {}
        touched: dict[tuple[Hashable, int], None] = {}
        for item in items:
            part = item.part
            if part != last_part:  # items come in runs of one partition
                last_part = part
                entries = self.state.part(part)
                closing = self.closing.setdefault(part, {})
                touched = self.touched.setdefault(part, {})
            t = item.time
            start = t - t % advance
            if tumbling:  # the common case, without the loop over overlapping windows
                close = start + size + grace
                if close <= item.wm:
                    late.append(item)
                    continue
                skey = (item.key, start)
                acc = entries.get(skey)
                if acc is None:
                    acc = initial()
                    waiting = closing.get(close)
                    if waiting is None:
                        waiting = closing[close] = {}
                    waiting[skey] = None
                entries[skey] = add(acc, item.value)
                touched[skey] = None
                continue
            accepted = False
            while start > t - size:
                close = start + size + grace
                if close > item.wm:
                    skey = (item.key, start)
                    acc = entries.get(skey)
                    if acc is None:
                        acc = initial()
                        waiting = closing.get(close)
                        if waiting is None:
                            waiting = closing[close] = {}
                        waiting[skey] = None
                    entries[skey] = add(acc, item.value)
                    touched[skey] = None
                    accepted = True
                start -= advance
            if not accepted:
                late.append(item)
        self.send_late(late, ctx)

    def finish(self, ctx: Context, watermarks: Mapping[int, int]) -> None:
        assert self.state is not None
        out: list[Item[Any, Any]] = []
        for part, touched in self.touched.items():
            self.state.dirty(part).update(touched)
        # Windows are aligned: a batch's results share a few distinct windows, built once.
        windows: dict[int, Window] = {}
        if not self.final_only:
            self._updates(self._emitted(ctx), watermarks, windows, out)
        self.touched.clear()
        for part, closing in self.closing.items():
            if part in watermarks and closing:
                self._close(part, closing, watermarks[part], windows, out)
        self.emit(out, ctx)

    def _emitted(self, ctx: Context) -> dict[int, dict[tuple[Hashable, int], None]]:
        """The windows whose updates this batch emits, per partition: those it touched, or
        with `every`, those touched since the partition's last emission, once its interval
        (`_interval`) has changed since (or when stopping), their marks deleted."""
        if self.every is None:
            return self.touched
        assert self.state is not None
        pending = self.pending
        for part, touched in self.touched.items():
            held = pending.setdefault(part, {})
            entries = self.state.part(part)
            dirty = self.state.dirty(part)
            for key, start in touched:
                if (key, start) not in held:
                    held[key, start] = None
                    entries[key, start, HELD] = True
                    dirty.add((key, start, HELD))
        emitted: dict[int, dict[tuple[Hashable, int], None]] = {}
        for part in list(pending):
            interval = self._interval(part, ctx.now)
            if not ctx.flush and self.emitted_in.get(part) == interval:
                continue
            self.emitted_in[part] = interval
            held = emitted[part] = pending.pop(part)
            entries = self.state.part(part)
            dirty = self.state.dirty(part)
            for key, start in held:
                entries.pop((key, start, HELD), None)
                dirty.add((key, start, HELD))
        return emitted

    def _interval(self, part: int, now: int) -> int:
        """The interval of `every` ms of wall-clock time that `now` falls in for partition
        `part`: the intervals of the partitions are staggered (offsets by the golden ratio,
        evenly spread for any partition count), so that their emissions, each once per
        interval, fall into different batches rather than all into one."""
        assert self.every is not None
        return (now + int(self.every * (part * _GOLDEN % 1.0))) // self.every

    def _updates(
        self,
        emitted: Mapping[int, Mapping[tuple[Hashable, int], None]],
        watermarks: Mapping[int, int],
        windows: dict[int, Window],
        out: list[Item[Any, Any]],
    ) -> None:
        assert self.state is not None
        result = self.aggregate.result
        for part, touched in emitted.items():
            entries = self.state.part(part)
            wm = watermarks.get(part, 0)
            horizon = self.horizons.get(part, NO_TIME)
            for key, start in touched:
                acc = entries.get((key, start))
                if acc is not None and start >= horizon:
                    window = windows.get(start) or self._window(windows, start)
                    value = Windowed(key, window, result(acc), False)
                    out.append(Item(part, key, window.end - 1, value, None, wm))

    def _close(
        self,
        part: int,
        closing: dict[int, dict[tuple[Hashable, int], None]],
        wm: int,
        windows: dict[int, Window],
        out: list[Item[Any, Any]],
    ) -> None:
        """Close `part`'s windows whose closing time `wm` has reached: a final result each
        (final mode), with `every` a last update each (whether emitted already or not:
        after a restore nothing tells which)."""
        assert self.state is not None
        due = sorted(close for close in closing if close <= wm)
        if not due:
            return
        result = self.aggregate.result
        entries = self.state.part(part)
        dirty = self.state.dirty(part)
        horizon = self.horizons.get(part, NO_TIME)
        last_updates = self.every is not None and not self.final_only
        held = self.pending.get(part, {})
        for close in due:
            keys = closing.pop(close)
            self.windows_closed += len(keys)
            for skey in keys:
                dirty.add(skey)
                if skey not in entries:
                    continue
                key, start = skey
                if last_updates:
                    if held.pop(skey, False) is None:
                        entries.pop((key, start, HELD), None)
                        dirty.add((key, start, HELD))
                    if start >= horizon:
                        window = windows.get(start) or self._window(windows, start)
                        value = Windowed(key, window, result(entries[skey]), False)
                        out.append(Item(part, key, window.end - 1, value, None, wm))
                if not (self.final_only and start >= horizon):
                    del entries[skey]  # unread: a restored accumulator stays undecoded
                    continue
                window = windows.get(start) or self._window(windows, start)
                value = Windowed(key, window, result(entries.pop(skey)), True)
                out.append(Item(part, key, window.end - 1, value, None, wm))

    def _window(self, windows: dict[int, Window], start: int) -> Window:
        window = windows[start] = Window(start, start + self.size)
        return window

    def restored(self, part: int) -> None:
        assert self.state is not None
        offset = self.size + self.grace
        entries = cast("dict[tuple[Hashable, int], Any]", self.state.part(part))
        windows: Iterable[tuple[Hashable, int]] = entries
        if self.every is not None:
            marks = [skey for skey in entries if len(skey) == _MARK_LENGTH]
            if marks:
                self.pending[part] = {(skey[0], skey[1]): None for skey in marks}
                windows = [skey for skey in entries if len(skey) != _MARK_LENGTH]
        # Grouped by window start without a Python loop per key: a restore may bring
        # millions of them (the sort is stable: arrival order is kept within a window).
        self.closing[part] = {
            start + offset: dict.fromkeys(skeys)
            for start, skeys in groupby(sorted(windows, key=_start), key=_start)
        }

    def release(self, part: int) -> None:
        super().release(part)
        self.closing.pop(part, None)
        self.touched.pop(part, None)
        self.pending.pop(part, None)
        self.emitted_in.pop(part, None)


HELD = "held"
"""The third element of the state key marking a window whose update is held back."""
_MARK_LENGTH = 3
"""A mark's state key is (key, start, HELD); a window's is (key, start)."""

_GOLDEN = 0.6180339887498949
"""The golden ratio's fractional part: `part * _GOLDEN % 1` spreads partitions evenly."""

_start = itemgetter(1)
"""A window's start in its state key (key, start)."""
