"""Session windows: per key, records less than `gap` apart share a session.

A session is the span [first record, last record] of its key's records, both ends
inclusive; as a `Window` (half-open, like every window) that is `Window(first, last + 1)`,
and a result's event time is the session's last record. A record joins the open session it
falls within `gap` of (start − gap < t < end + gap); one that falls within `gap` of two
merges them, their accumulators combined with the aggregate's `merge` (the later session
folded into the earlier). A session closes when the watermark reaches its last record +
`gap` + `grace`: until then a record could still extend it.

Late records. A record is late, and goes to the late output, when the session it would
start is already closed (t + gap + grace ≤ watermark), or when it falls within `gap` of a
session that has closed: merging into a session whose final result has left would
contradict that result, and starting a separate session beside it would break the rule
that records less than `gap` apart share one. So the sessions emitted are always exactly
the sessions of the records accepted. To judge the second case after a session closed, a
key keeps the end of its last closed session until no record that is not late anyway could
fall within `gap` of it (the watermark reaches that end + 2·gap + grace).

Emission. `.final()`: one result per session when it closes. `.updates()`: after each batch,
the current result of every session the batch touched (`final` False) and, like Kafka
Streams' session store, a *tombstone* — the same `Windowed` with `value` None — for every
window emitted before that no longer exists: the sessions a merge absorbed, and a session's
previous extent when a record moved its start or end. Tombstones come before the updates of
their key, so a sink that upserts by (key, window start[, end]) and deletes on None holds
exactly the current sessions; nothing more is emitted when a session closes.

Replays. A replay that starts reading a partition in the middle of its log (`Task`'s
`partial`) may lack records before its horizon, so it emits a session — result, update or
tombstone — only if no record before the horizon could belong to it: the earliest time that
can join a session starting at s is s − gap + 1 ms, so s − gap + 1 ≥ horizon. Such a session
is exactly the one a run over the whole log has; the others are left to what that run wrote.

State: one entry per key, `[end of the last closed session, [[start, end, accumulator],
...]]` with its open sessions in start order. The timers (when each key is next due to close
a session or forget its closed end) are derived from it and rebuilt on restore.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from pipeline.streams.items import NO_TIME, Item, Window, Windowed, duration_millis
from pipeline.streams.job import Node
from pipeline.streams.operators import Context, StatefulOperator
from pipeline.streams.timers import Timers
from pipeline.streams.windows import Session

Sessions = list[list[Any]]
"""A key's open sessions: [start, end, accumulator], in start order."""


class SessionWindowOperator(StatefulOperator):
    """Keeps each key's open sessions until they close (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        kind: Session = node.params["kind"]
        self.gap = duration_millis(kind.gap)
        self.grace = duration_millis(kind.grace)
        self.aggregate = node.params["aggregate"]
        self.final_only: bool = node.params["final_only"]
        self.timers = Timers()
        # Updates mode, per partition and key touched by the batch: the windows the key's
        # sessions had before the batch (what the sink holds), and the starts of the
        # sessions records went into.
        self.touched: dict[int, dict[Hashable, tuple[list[tuple[int, int]], set[int]]]] = {}

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:  # noqa: PLR0912, PLR0915 - the per-record path, kept in one loop
        assert self.state is not None
        gap = self.gap
        span = gap + self.grace
        add, initial, merge = self.aggregate.add, self.aggregate.initial, self.aggregate.merge
        schedule = self.timers.schedule
        tracking = not self.final_only
        late: list[Item[Any, Any]] = []
        last_part = None
        entries: dict[Any, Any] = {}
        dirty: set[Any] = set()
        touched: dict[Hashable, tuple[list[tuple[int, int]], set[int]]] = {}
        for item in items:
            part = item.part
            if part != last_part:
                last_part = part
                entries = self.state.part(part)
                dirty = self.state.dirty(part)
                touched = self.touched.setdefault(part, {})
            t, wm, key = item.time, item.wm, item.key
            if t + span <= wm:  # the session it would start is closed already
                late.append(item)
                continue
            entry = entries.get(key)
            if entry is None:
                entries[key] = [NO_TIME, [[t, t, add(initial(), item.value)]]]
                dirty.add(key)
                schedule(part, key, t + span)
                if tracking:
                    touched[key] = ([], {t})
                continue
            closed_end: int = entry[0]
            sessions: Sessions = entry[1]
            if t < closed_end + gap:  # within gap of a session that has left
                late.append(item)
                continue
            first = -1
            hits = 0
            bridges_closed = False
            for i, session in enumerate(sessions):
                if session[0] - gap < t < session[1] + gap:
                    if session[1] + span <= wm:  # closed, not yet emitted
                        bridges_closed = True
                        break
                    if first < 0:
                        first = i
                    hits += 1
            if bridges_closed:
                late.append(item)
                continue
            if tracking:
                seen = touched.get(key)
                if seen is None:
                    seen = touched[key] = ([(s[0], s[1]) for s in sessions], set())
                starts = seen[1]
            if first < 0:
                at = 0
                while at < len(sessions) and sessions[at][0] < t:
                    at += 1
                sessions.insert(at, [t, t, add(initial(), item.value)])
                if tracking:
                    starts.add(t)
                schedule(part, key, t + span)
            else:
                session = sessions[first]
                if tracking:
                    starts.discard(session[0])
                if hits == 2:  # the record bridges two sessions: one absorbs the other
                    absorbed = sessions.pop(first + 1)
                    session[1] = absorbed[1]
                    session[2] = merge(session[2], absorbed[2])
                    if tracking:
                        starts.discard(absorbed[0])
                if t < session[0]:
                    session[0] = t
                elif t > session[1]:
                    session[1] = t
                session[2] = add(session[2], item.value)
                if tracking:
                    starts.add(session[0])
                schedule(part, key, session[1] + span)
            dirty.add(key)
        self.send_late(late, ctx)

    def finish(self, ctx: Context, watermarks: Mapping[int, int]) -> None:
        assert self.state is not None
        out: list[Item[Any, Any]] = []
        if self.touched:
            self._updates(out, watermarks)
        result = self.aggregate.result
        gap, span, final_only = self.gap, self.gap + self.grace, self.final_only
        for part, wm in watermarks.items():
            due = self.timers.due(part, wm)
            if not due:
                continue
            entries = self.state.part(part)
            dirty = self.state.dirty(part)
            # Sessions starting before this may lack records before a replay's horizon.
            earliest = self.horizons.get(part, NO_TIME) + gap - 1
            for key in due:
                entry = entries.get(key)
                if entry is None:
                    continue
                closed_end: int = entry[0]
                sessions: Sessions = entry[1]
                next_due = min([s[1] for s in sessions], default=wm) + span
                if closed_end != NO_TIME:
                    next_due = min(next_due, closed_end + gap + span)
                if next_due > wm:  # woken for a close a later record postponed
                    self.timers.schedule(part, key, next_due)
                    continue
                still_open: Sessions = []
                for session in sessions:
                    end = session[1]
                    if end + span > wm:
                        still_open.append(session)
                        continue
                    closed_end = max(closed_end, end)
                    self.windows_closed += 1
                    start = session[0]
                    if final_only and start >= earliest:
                        value = Windowed(key, Window(start, end + 1), result(session[2]), True)
                        out.append(Item(part, key, end, value, None, wm))
                if closed_end + gap + span <= wm:  # no record could fall near it any more
                    closed_end = NO_TIME
                dirty.add(key)
                if not still_open and closed_end == NO_TIME:
                    del entries[key]
                    continue
                entries[key] = [closed_end, still_open]
                self._schedule_next(part, key, closed_end, still_open)
        self.emit(out, ctx)

    def _updates(self, out: list[Item[Any, Any]], watermarks: Mapping[int, int]) -> None:
        """The batch's tombstones and updates, per touched key."""
        assert self.state is not None
        result = self.aggregate.result
        for part, touched in self.touched.items():
            wm = watermarks.get(part)
            if wm is None:
                continue
            entries = self.state.part(part)
            earliest = self.horizons.get(part, NO_TIME) + self.gap - 1
            for key, (before, starts) in touched.items():
                entry = entries.get(key)
                sessions: Sessions = entry[1] if entry is not None else []
                now = {(s[0], s[1]) for s in sessions}
                for start, end in before:
                    if (start, end) not in now and start >= earliest:
                        window = Window(start, end + 1)
                        out.append(
                            Item(part, key, end, Windowed(key, window, None, False), None, wm)
                        )
                for start, end, acc in sessions:
                    if start in starts and start >= earliest:
                        window = Window(start, end + 1)
                        value = Windowed(key, window, result(acc), False)
                        out.append(Item(part, key, end, value, None, wm))
        self.touched.clear()

    def _schedule_next(self, part: int, key: Hashable, closed_end: int, sessions: Sessions) -> None:
        """Wake `key` when its first open session closes or its closed end is forgotten."""
        span = self.gap + self.grace
        due = min((s[1] + span for s in sessions), default=None)
        if closed_end != NO_TIME:
            forget = closed_end + self.gap + span
            due = forget if due is None else min(due, forget)
        if due is not None:
            self.timers.schedule(part, key, due)

    def restored(self, part: int) -> None:
        assert self.state is not None
        self.timers.release(part)
        for key, (closed_end, sessions) in self.state.part(part).items():
            self._schedule_next(part, key, closed_end, sessions)

    def release(self, part: int) -> None:
        super().release(part)
        self.timers.release(part)
        self.touched.pop(part, None)
