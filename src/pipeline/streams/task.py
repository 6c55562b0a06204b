"""Running a plan: one `Task` per process runs a job's operators over batches of records.

The task owns the per-partition clocks. Each source partition's *stream time* is the
largest event time read from it; its watermark is that minus the job's out-of-orderness.
A partition that has sent nothing for `idle_timeout` of wall-clock time has its watermark
follow the wall clock (`now − idle_timeout`), so quiet keys and partitions still see their
windows close. Only a partition read to its end may idle: while the runtime knows it has
records left to read (`caught_up` leaves it out), its idle timer starts again at every
batch, so a backlog that is slow to arrive (a restore, a slow fetch) never turns late.
A task's watermark for partition p is the minimum over the job's source topics' partition
p (co-partitioned sources, e.g. the two sides of a join), and never goes back. Windows
close per partition: a result never depends on which worker held which partitions, or
where one batch ended and the next began.

A watermark that the idle clock moved past what the stream times give is saved with the
stream times whenever a checkpoint depends on it (a batch of records was judged by it, or
it closed a window), so a restored partition never reopens a window whose final result
has left, nor accepts a record into a window it already called late. A restore does not
know how long the partition had been idle: its idle timer starts afresh.

A partition read from the middle of its log with no state (a replay, or a job rewound by
`pipeline replay` under Kafka authority: `rewound_state`) has a *horizon*: the first event
time read plus the out-of-orderness. No record before the first one read can belong to a
window starting at or after it, so those windows are emitted as a run over the whole log
emits them, and the ones starting before it (incomplete) are not. The horizon is saved
with the stream times, so a restart keeps judging the same windows incomplete.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.streams.fixed_windows import FixedWindowOperator
from pipeline.streams.items import NO_TIME, Item, Late, Rejection, Tombstone, to_millis
from pipeline.streams.job import Node, Plan
from pipeline.streams.joins import (
    GlobalJoinOperator,
    IntervalJoinOperator,
    TableJoinOperator,
    TableOperator,
)
from pipeline.streams.operators import (
    Context,
    FilterOperator,
    FlatMapOperator,
    KeyByOperator,
    MapBatchOperator,
    MapOperator,
    Operator,
    PassOperator,
    PeekOperator,
    ScanBatchOperator,
    ScanOperator,
    SinkOperator,
    SplitOperator,
    StatefulOperator,
    ValidateOperator,
)
from pipeline.streams.ranking import TopKOperator
from pipeline.streams.session_windows import SessionWindowOperator
from pipeline.streams.sliding_windows import SlidingWindowOperator
from pipeline.streams.state import STREAM_TIME_STEP, KeyedState, StateChange, dumps
from pipeline.streams.windows import Hopping, Session, Sliding, Tumbling

NO_CEILING = 2**62
"""The stream-time ceiling of a job without `max_ahead`: beyond any event time."""
WATERMARK = ("watermark",)
"""The key of a partition's saved watermark among its stream times (keyed by topic name)."""
HORIZON = ("horizon",)
"""The key of a partition's replay horizon among its stream times: epoch ms, or None for a
partition rewound and not read since (the first record read sets it)."""

Input = tuple[str, int, Any, object]
"""One decoded record handed to a task: (topic, partition, value, origin). `origin` is the
runtime's own handle on the record (the engine passes it through untouched). A table's
topic has no event time and no part in the watermark: its records only update the table;
one with a null value is passed as `Tombstone(key)`."""


@dataclass(slots=True)
class Output:
    """What a batch (or a tick of the wall clock) produced."""

    sinks: dict[str, list[Item[Any, Any]]] = field(default_factory=dict)
    """Items per sink name, in order."""
    rejected: list[Rejection] = field(default_factory=list)
    late: list[Late] = field(default_factory=list)
    """Late records no `.late()` output took (the runtime sends them to `<topic>.late`)."""

    def values(self, sink: str) -> list[Any]:
        """The values that reached `sink`."""
        return [item.value for item in self.sinks.get(sink, ())]


def rewound_state(*, partial: bool) -> dict[str, list[tuple[bytes, bytes]]]:
    """The state (per step id, serialized entries) of a partition rewound to an offset and
    emptied: nothing, or, read from the middle of its log (`partial`), a horizon the first
    record read sets (see the module doc)."""
    return {STREAM_TIME_STEP: [(dumps(HORIZON), dumps(None))]} if partial else {}


def _operator(node: Node) -> Operator:
    kind = node.kind
    if kind == "window":
        window = node.params["kind"]
        if isinstance(window, Tumbling | Hopping):
            return FixedWindowOperator(node)
        if isinstance(window, Session):
            return SessionWindowOperator(node)
        if isinstance(window, Sliding):
            return SlidingWindowOperator(node)
        raise TypeError(f"unknown window kind {window!r}")
    simple: dict[str, type[Operator]] = {
        "source": PassOperator,
        "table": TableOperator,
        "join_table": TableJoinOperator,
        "join_global": GlobalJoinOperator,
        "join": IntervalJoinOperator,
        "map": MapOperator,
        "map_batch": MapBatchOperator,
        "scan": ScanOperator,
        "scan_batch": ScanBatchOperator,
        "filter": FilterOperator,
        "flat_map": FlatMapOperator,
        "key_by": KeyByOperator,
        "peek": PeekOperator,
        "validate": ValidateOperator,
        "split": SplitOperator,
        "branch": PassOperator,
        "results": PassOperator,
        "late": PassOperator,
        "sink": SinkOperator,
        "top_k": TopKOperator,
    }
    return simple[kind](node)


class Task:
    """A job's operators, state and clocks in one process, for the partitions assigned."""

    def __init__(self, plan: Plan, *, partial: Iterable[int] = ()) -> None:
        """`partial`: partitions read from the middle of their log with no state (a
        replay): their windows that started before the first record read are incomplete,
        so results of those are not emitted (their state is kept and closes as usual)."""
        self.plan = plan
        job = plan.job
        self._ooo = job.out_of_orderness_ms
        self._idle = job.idle_timeout_ms
        self._ahead = job.max_ahead_ms
        built: dict[int, Operator] = {}
        for node in plan.nodes:
            op = _operator(node)
            built[id(node)] = op
            for index, parent in enumerate(node.parents):
                inlet = op.inlet(index, built[id(parent)])
                if inlet is not None:
                    built[id(parent)].children.append(inlet)
        self.operators = [built[id(node)] for node in plan.nodes]
        self.stateful = [op for op in self.operators if isinstance(op, StatefulOperator)]
        self._partial = set(partial)
        self.horizons: dict[int, int] = {}
        """Per partial partition: windows starting before this are incomplete."""
        for op in self.stateful:
            op.wire()
            op.horizons = self.horizons
        self._states = {op.node.id: op.state for op in self.stateful if op.state is not None}
        self._sources = {topic: (spec, built[id(spec.node)]) for topic, spec in job.sources.items()}
        self._tables = {topic: (spec, built[id(spec.node)]) for topic, spec in job.tables.items()}
        self._topics = tuple(job.sources)
        # Per partition: stream time per source topic (state, restored with the rest), the
        # wall-clock time each was last heard from, and the task's watermark.
        self._time = KeyedState(STREAM_TIME_STEP)
        self._heard: dict[tuple[str, int], int] = {}
        self.watermarks: dict[int, int] = {}

    # ----------------------------------------------------------------- partitions

    def assign(
        self, part: int, entries: Mapping[str, Iterable[tuple[bytes, bytes]]], now: int
    ) -> None:
        """Take `part` on, with its state as the backing holds it (per step id: serialized
        key and value pairs). Before its first record is processed."""
        self._time.restore(part, entries.get(STREAM_TIME_STEP, ()))
        for op in self.stateful:
            assert op.state is not None
            op.state.restore(part, entries.get(op.node.id, ()))
            op.restored(part)
        for topic in self._topics:
            self._heard[(topic, part)] = now
        horizon = self._time.part(part).get(HORIZON, NO_TIME)
        if horizon is None:
            self._partial.add(part)
        elif horizon != NO_TIME:
            self.horizons[part] = horizon
        saved = self._time.part(part).get(WATERMARK, NO_TIME)
        self.watermarks[part] = max(saved, self._watermark(part, now, initial=True))

    def release(self, part: int) -> None:
        """Forget `part` (revoked, or to be restored afresh)."""
        self._time.release(part)
        for op in self.stateful:
            op.release(part)
        for topic in self._topics:
            self._heard.pop((topic, part), None)
        self.watermarks.pop(part, None)
        self.horizons.pop(part, None)

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions this task holds."""
        return frozenset(self.watermarks)

    # ----------------------------------------------------------------- batches

    def process(  # noqa: PLR0915 - one loop per batch, inlined: it runs once per record
        self,
        inputs: Sequence[Input],
        now: int,
        *,
        caught_up: Collection[tuple[str, int]] | None = None,
    ) -> Output:
        """Run a batch of records (in the order read) through the job; `now` is the wall
        clock in epoch milliseconds. A table's records are applied in that order too: the
        stream records read before one are handed on before it is applied. `caught_up`:
        the (topic, partition)s read to their end, the only ones that may idle (None: the
        caller does not know, every partition may)."""
        self._behind(caught_up, now)
        ctx = Context(now)
        per_source: dict[str, list[Item[Any, Any]]] = {}
        per_table: dict[str, list[Item[Any, Any]]] = {}
        sources = self._sources
        times = self._time
        ooo = self._ooo
        watermarks = self.watermarks
        single = len(self._topics) == 1
        heard = self._heard
        partial, horizons = self._partial, self.horizons
        # Event times past this do not move stream time (`Job.max_ahead`).
        ceiling = NO_CEILING if self._ahead is None else now + self._ahead
        if not single:
            self._hear(inputs, now)
        # Records come in runs of one topic and partition: per-run lookups are hoisted.
        last_topic: str | None = None
        last_part = -1
        items: list[Item[Any, Any]] = []
        new_item = Item
        stream: dict[Any, Any] = {}
        dirty: set[Any] = set()
        latest = NO_TIME
        step = ""
        key_of: Any = None
        time_of: Any = None
        wm = NO_TIME
        read: set[int] = set()
        for topic, part, value, origin in inputs:
            if part != last_part or topic is not last_topic:
                read.add(part)
                source = sources.get(topic)
                if source is None:
                    if per_source:
                        self._push(per_source, ctx)
                    self._table_record(per_table, topic, part, value, origin, ctx)
                    last_topic = None
                    continue
                if per_table:
                    self._push(per_table, ctx)
                last_topic, last_part = topic, part
                spec = source[0]
                key_of, time_of, step = spec.key, spec.event_time, spec.node.id
                found = per_source.get(topic)
                items = per_source[topic] = [] if found is None else found
                if part not in watermarks:
                    name = self.plan.job.name
                    raise KeyError(f"partition {part} is not assigned to job {name!r}")
                stream = times.part(part)
                dirty = times.dirty(part)
                latest = stream.get(topic, NO_TIME)
                heard[(topic, part)] = now
                wm = watermarks[part]
            try:
                key = key_of(value)
            except Exception as error:  # noqa: BLE001 - a record's fault, never the job's
                ctx.rejected.append(Rejection(origin, step, "invalid_key", error))
                continue
            try:
                t = to_millis(time_of(value))
            except Exception as error:  # noqa: BLE001
                ctx.rejected.append(Rejection(origin, step, "invalid_event_time", error))
                continue
            if latest < t <= ceiling:
                latest = stream[topic] = t
                dirty.add(topic)
                candidate = t - ooo if single else self._watermark(part, now)
                if candidate > wm:
                    wm = watermarks[part] = candidate
            if partial and part in partial and part not in horizons:
                horizons[part] = stream[HORIZON] = t + ooo
                dirty.add(HORIZON)
            items.append(new_item(part, key, t, value, origin, wm))
        self._push(per_table, ctx)
        self._push(per_source, ctx)
        self._advance_idle(now)
        out = self._finish(ctx)
        self._save_watermarks(read)
        return out

    def advance(
        self,
        now: int,
        *,
        caught_up: Collection[tuple[str, int]] | None = None,
        flush: bool = False,
    ) -> Output:
        """Let the wall clock move on with no records: idle partitions' watermarks follow
        it, and windows they close are emitted (`caught_up` as for `process`). `flush`: the
        worker is stopping; results held back (window updates emitted `every`) come out."""
        self._behind(caught_up, now)
        self._advance_idle(now)
        out = self._finish(Context(now, flush=flush))
        self._save_watermarks(set())
        return out

    def changes(self) -> list[StateChange]:
        """State entries changed since the last call, serialized as they are now."""
        out = self._time.changes()
        for op in self.stateful:
            assert op.state is not None
            out.extend(op.state.changes())
        return out

    def state(self, step: str, part: int) -> dict[Any, Any]:
        """A copy of one step's state in one partition (for tests and tools)."""
        if step == STREAM_TIME_STEP:
            return dict(self._time.part(part))
        return dict(self._states[step].part(part))

    def windows_closed(self) -> dict[str, int]:
        """Per window (or ranking) step id, the windows it has closed since the task began."""
        return {
            op.node.id: op.windows_closed
            for op in self.stateful
            if op.node.kind in {"window", "top_k"}
        }

    def state_size(self) -> int:
        """Entries held over all stateful steps and partitions."""
        return sum(op.state.size() for op in self.stateful if op.state is not None)

    def _push(self, pending: dict[str, list[Item[Any, Any]]], ctx: Context) -> None:
        """Hand the items read so far to their source or table steps, and forget them."""
        for topic, items in pending.items():
            (self._sources.get(topic) or self._tables[topic])[1].push(items, ctx)
        pending.clear()

    def _table_record(  # noqa: PLR0917 - one call per table record, from `process` only
        self,
        pending: dict[str, list[Item[Any, Any]]],
        topic: str,
        part: int,
        value: Any,
        origin: object,
        ctx: Context,
    ) -> None:
        found = self._tables.get(topic)
        if found is None:
            raise KeyError(f"job {self.plan.job.name!r} does not read topic {topic!r}")
        spec = found[0]
        if isinstance(value, Tombstone):
            key = value.key
        else:
            try:
                key = spec.key(value)
            except Exception as error:  # noqa: BLE001 - a record's fault, never the job's
                ctx.rejected.append(Rejection(origin, spec.node.id, "invalid_key", error))
                return
        wm = self.watermarks.get(part)
        if wm is None:
            raise KeyError(f"partition {part} is not assigned to job {self.plan.job.name!r}")
        pending.setdefault(topic, []).append(Item(part, key, NO_TIME, value, origin, wm))

    # ----------------------------------------------------------------- clocks

    def _behind(self, caught_up: Collection[tuple[str, int]] | None, now: int) -> None:
        """Restart the idle timers of the partitions with records left to read."""
        if caught_up is None:
            return
        heard = self._heard
        for where in heard:
            if where not in caught_up:
                heard[where] = now

    def _hear(self, inputs: Sequence[Input], now: int) -> None:
        """Mark the batch's stream partitions heard from before any watermark is computed:
        a topic with records in the batch is not idle, however long it went unpolled (a
        slow sink, an outage), and must not move the others' watermark to the wall clock."""
        sources, heard = self._sources, self._heard
        for topic, part, _, _ in inputs:
            if topic in sources:
                heard[(topic, part)] = now

    def _watermark(self, part: int, now: int, *, initial: bool = False) -> int:
        stream = self._time.part(part)
        idle, ooo = self._idle, self._ooo
        lowest: int | None = None
        for topic in self._topics:
            wm = stream.get(topic, NO_TIME)
            wm = wm - ooo if wm != NO_TIME else NO_TIME
            if not initial and now - self._heard.get((topic, part), now) >= idle:
                wm = max(wm, now - idle)
            lowest = wm if lowest is None else min(lowest, wm)
        current = NO_TIME if initial else self.watermarks.get(part, NO_TIME)
        return max(current, lowest if lowest is not None else NO_TIME)

    def _advance_idle(self, now: int) -> None:
        idle = self._idle
        for part in self.watermarks:
            if any(now - self._heard.get((t, part), now) >= idle for t in self._topics):
                self.watermarks[part] = self._watermark(part, now)

    def _finish(self, ctx: Context) -> Output:
        watermarks = self.watermarks
        for op in self.operators:
            op.finish(ctx, watermarks)
        return Output(sinks=ctx.sinks, rejected=ctx.rejected, late=ctx.late)

    def _save_watermarks(self, read: set[int]) -> None:
        """Save the watermark of each partition whose checkpoint depends on it (records of
        it were read, or its state changed) where a restore would not find it again."""
        stateful = [op.state for op in self.stateful if op.state is not None]
        for part, wm in self.watermarks.items():
            stream = self._time.part(part)
            if wm <= stream.get(WATERMARK, NO_TIME) or wm <= self._watermark(part, 0, initial=True):
                continue
            if part in read or any(state.changed(part) for state in stateful):
                stream[WATERMARK] = wm
                self._time.dirty(part).add(WATERMARK)
