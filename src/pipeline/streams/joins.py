"""Joins: a stream with a table (lookup), with a global table, and two streams within an
interval of event time.

**Stream–table** (Kafka Streams' KStream–KTable join). A table is its topic's latest value
per key, kept as keyed state per partition and restored like any state; a tombstone deletes
a key. A stream record is joined with the table as it is when the record is processed:
records are processed in the order they were read, a table update included (the task
hands the stream records read before an update to the join before it applies the update).
Table records never move a watermark. What a record meets therefore depends on when the
table's update was read relative to it, as in Kafka Streams: the join is deterministic
given the order of reads, not across every interleaving of the two topics.

**Stream–global table** (Kafka Streams' KStream–GlobalKTable join). Every task holds the
whole table, read by the runtime from the topic's beginning and followed while the job runs
(no state, no co-partitioning, any lookup key). A record meets the row the table holds
when it is processed: an update read by then counts, whichever topic it came from first —
processing time, not event time, so a replay of old records meets today's rows.

**Stream–stream interval join** (Kafka Streams' `JoinWindows`). A left record at time l
and a right record at time r with the same key join when l − before ≤ r ≤ l + after (both
ends included); the result's time is max(l, r). Both sides are buffered per key:

- a left record's interval, the right times [l − before, l + after], closes once the
  watermark passes l + after + grace; a left record arriving after that is late;
- in an inner join a right record is late once its own interval, the left times
  [r − after, r + before], has closed (the watermark passes r + before + grace): each
  side waits `grace` beyond the last time it could match;
- in a left join a left record without a match leaves as `joiner(left, None)` when its
  interval closes, and never if a match was found. A right record is then late once the
  watermark passes r + grace — once the earliest left interval it could fall in has
  closed — because that left record may already have left unmatched: a right record is
  never joined to a left one that was reported alone;
- a record is kept only while a record of the other side that is still on time could
  match it, then evicted: in an inner join once the watermark passes its time + before
  + after + grace (the window's span plus grace); in a left join a left record leaves the
  state when its interval closes.

A `matches(left, right)` predicate, when given, is part of the join condition (SQL's
`LEFT JOIN … ON key = key AND time in interval AND matches`): a pair in the interval for
which it is false is not joined and does not count as a match, so in a left join a left
record that met only such records still leaves as `joiner(left, None)` when its interval
closes. Whether a left record was matched is part of its state, so that holds across a
restore too.

So a pair is joined exactly when both records are on time, whatever the order in which
the two topics were read or where a batch ended; with `grace` at least the skew between
the two topics (and their disorder) no record is late and the result is that of the whole
input at once.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Mapping
from heapq import heapify, heappop, heappush
from typing import Any, cast

from pipeline.streams.items import Item, Tombstone
from pipeline.streams.job import GlobalTableSpec, Node
from pipeline.streams.operators import Context, Operator, StatefulOperator

LEFT, RIGHT = 0, 1


class TableOperator(StatefulOperator):
    """Keeps a table: state `key → latest value`; a tombstone deletes the key. Emits
    nothing: the joins read its state."""

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        assert self.state is not None
        last_part = None
        rows: dict[Hashable, Any] = {}
        dirty: set[Hashable] = set()
        for item in items:
            if item.part != last_part:
                last_part = item.part
                rows = self.state.part(item.part)
                dirty = self.state.dirty(item.part)
            if isinstance(item.value, Tombstone):
                rows.pop(item.key, None)
            else:
                rows[item.key] = item.value
            dirty.add(item.key)


class TableJoinOperator(Operator):
    """Looks each item's key up in its table's state (its second parent, whose items it
    does not take)."""

    table: TableOperator | None = None

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.joiner: Callable[[Any, Any], Any] = node.params["joiner"]
        self.left = node.params["how"] == "left"

    def inlet(self, index: int, parent: Operator) -> Operator | None:
        if index == 0:
            return self
        if not isinstance(parent, TableOperator):
            raise TypeError(f"step {self.node.id!r} looks up {parent.node.id!r}: not a table")
        self.table = parent
        return None

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        assert self.table is not None
        assert self.table.state is not None
        state, joiner, left = self.table.state, self.joiner, self.left
        out: list[Item[Any, Any]] = []
        last_part = None
        rows: dict[Hashable, Any] = {}
        for i in items:
            if i.part != last_part:
                last_part = i.part
                rows = state.part(i.part)
            row = rows.get(i.key)  # a table holds no None: a tombstone deletes the key
            if row is not None or left:
                out.append(Item(i.part, i.key, i.time, joiner(i.value, row), i.origin, i.wm))
        self.emit(out, ctx)


class GlobalJoinOperator(Operator):
    """Looks each item up in a global table, through the lookup the runtime bound to it."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        params = node.params
        self.joiner: Callable[[Any, Any], Any] = params["joiner"]
        self.key: Callable[[Any], Hashable] = params["key"]
        self.left = params["how"] == "left"
        self.table: GlobalTableSpec = params["table"]

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        lookup = self.table.lookup
        if lookup is None:
            raise RuntimeError(
                f"step {self.node.id!r}: global table {self.table.topic!r} was never bound "
                "(the runtime binds it before the job runs; GlobalTable.bind in tests)"
            )
        joiner, key, left = self.joiner, self.key, self.left
        out: list[Item[Any, Any]] = []
        for i in items:
            row = lookup(key(i.value))
            if row is not None or left:
                out.append(Item(i.part, i.key, i.time, joiner(i.value, row), i.origin, i.wm))
        self.emit(out, ctx)


class _JoinSide(Operator):
    """What one side of an interval join pushes into."""

    def __init__(self, join: IntervalJoinOperator, side: int) -> None:
        super().__init__(join.node)
        self.join = join
        self.side = side

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        self.join.push_side(self.side, items, ctx)


Expiry = tuple[int, int, int, Hashable, int]
"""(evict at watermark, sequence, side, key, time): the sequence keeps the heap from ever
comparing keys, and keeps evictions in arrival order."""


class IntervalJoinOperator(StatefulOperator):
    """Buffers both sides per key and joins each arriving record with the other side's
    records in its interval.

    State: `(side, key, time) → values` (a left value as `[value, matched]`), so a batch
    rewrites only the entries it touched. Derived and rebuilt on restore, per partition:
    each (side, key)'s buffered times in order (the interval lookup is a bisection) and a
    heap of entries by eviction time."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        params = node.params
        before, after, grace = params["before"], params["after"], params["grace"]
        self.joiner: Callable[[Any, Any], Any] = params["joiner"]
        self.matches: Callable[[Any, Any], bool] | None = params["matches"]
        self.left_join = params["how"] == "left"
        # per side: the other side's times an arriving record meets, as (below, above) its
        # own; how far behind the watermark it may be and still be on time; and how far
        # behind the watermark its buffered copy is kept
        self.reach = ((before, after), (after, before))
        right_lateness = grace if self.left_join else before + grace
        self.lateness = (after + grace, right_lateness)
        self.keep = (after + right_lateness, before + after + grace)
        self.times: dict[int, dict[tuple[int, Hashable], list[int]]] = {}
        self.expiring: dict[int, list[Expiry]] = {}
        self._sequence = 0
        self._sides = (_JoinSide(self, LEFT), _JoinSide(self, RIGHT))

    def inlet(self, index: int, parent: Operator) -> Operator | None:
        del parent
        return self._sides[index]

    def push_side(self, side: int, items: list[Item[Any, Any]], ctx: Context) -> None:
        """Join `side`'s items with the other side's buffered records, then buffer them."""
        assert self.state is not None
        other = 1 - side
        lateness, keep = self.lateness[side], self.keep[side]
        out: list[Item[Any, Any]] = []
        late: list[Item[Any, Any]] = []
        last_part = None
        entries: dict[Any, Any] = {}
        dirty: set[Any] = set()
        times: dict[tuple[int, Hashable], list[int]] = {}
        expiring: list[Expiry] = []
        for item in items:
            t = item.time
            if item.wm > t + lateness:
                late.append(item)
                continue
            part = item.part
            if part != last_part:
                last_part = part
                entries = self.state.part(part)
                dirty = self.state.dirty(part)
                times = self.times.setdefault(part, {})
                expiring = self.expiring.setdefault(part, [])
            key = item.key
            partners = times.get((other, key))
            matched = self._meet(side, item, partners, entries, dirty, out) if partners else False
            skey = (side, key, t)
            entry = entries.get(skey)
            if entry is None:
                entry = entries[skey] = []
                insort(times.setdefault((side, key), []), t)
                self._sequence += 1
                heappush(expiring, (t + keep + 1, self._sequence, side, key, t))
            entry.append([item.value, matched] if side == LEFT else item.value)
            dirty.add(skey)
        self.emit(out, ctx)
        self.send_late(late, ctx)

    def _meet(  # noqa: PLR0917 - once per record that has partners, from `push_side`
        self,
        side: int,
        item: Item[Any, Any],
        partners: list[int],
        entries: dict[Any, Any],
        dirty: set[Any],
        out: list[Item[Any, Any]],
    ) -> bool:
        """Join `item` with the other side's records in its interval (`partners` are their
        times, in order) that `matches` accepts; whether it met any."""
        joiner, matches, left_join = self.joiner, self.matches, self.left_join
        below, above = self.reach[side]
        part, key, t, value, origin, wm = (
            item.part,
            item.key,
            item.time,
            item.value,
            item.origin,
            item.wm,
        )
        matched = False
        for at in range(bisect_left(partners, t - below), len(partners)):
            pt = partners[at]
            if pt > t + above:
                break
            joined_at = max(t, pt)
            if side == LEFT:
                for partner in entries[(RIGHT, key, pt)]:
                    if matches is not None and not matches(value, partner):
                        continue
                    matched = True
                    out.append(Item(part, key, joined_at, joiner(value, partner), origin, wm))
                continue
            for pair in entries[(LEFT, key, pt)]:
                if matches is not None and not matches(pair[0], value):
                    continue
                matched = True
                out.append(Item(part, key, joined_at, joiner(pair[0], value), origin, wm))
                if left_join and not pair[1]:
                    pair[1] = True
                    dirty.add((LEFT, key, pt))
        return matched

    def finish(self, ctx: Context, watermarks: Mapping[int, int]) -> None:
        assert self.state is not None
        joiner, left_join = self.joiner, self.left_join
        out: list[Item[Any, Any]] = []
        for part, expiring in self.expiring.items():
            wm = watermarks.get(part)
            if wm is None or not expiring or expiring[0][0] > wm:
                continue
            entries = self.state.part(part)
            dirty = self.state.dirty(part)
            times = self.times[part]
            while expiring and expiring[0][0] <= wm:
                _, _, side, key, t = heappop(expiring)
                skey = (side, key, t)
                entry = entries.pop(skey)
                dirty.add(skey)
                buffered = times[(side, key)]
                del buffered[bisect_left(buffered, t)]
                if not buffered:
                    del times[(side, key)]
                if side == LEFT and left_join:
                    out.extend(
                        Item(part, key, t, joiner(value, None), None, wm)
                        for value, matched in entry
                        if not matched
                    )
        self.emit(out, ctx)

    def restored(self, part: int) -> None:
        assert self.state is not None
        times: dict[tuple[int, Hashable], list[int]] = {}
        expiring: list[Expiry] = []
        keep = self.keep
        for skey in cast("dict[tuple[int, Hashable, int], Any]", self.state.part(part)):
            side, key, t = skey
            times.setdefault((side, key), []).append(t)
            self._sequence += 1
            expiring.append((t + keep[side] + 1, self._sequence, side, key, t))
        for buffered in times.values():
            buffered.sort()
        heapify(expiring)
        self.times[part] = times
        self.expiring[part] = expiring

    def release(self, part: int) -> None:
        super().release(part)
        self.times.pop(part, None)
        self.expiring.pop(part, None)
