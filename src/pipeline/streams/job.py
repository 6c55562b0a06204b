"""Declaring a job: sources, a chain of steps, sinks — built into an immutable plan.

    job = Job("sensors", out_of_orderness=timedelta(seconds=5))
    readings = job.source("sensor-readings", Reading,
                          key=lambda r: r.sensor_id, event_time=lambda r: r.timestamp)
    valid = readings.validate(check_reading, rejects=(DomainError,))
    valid.to(READINGS)
    (valid.window(Tumbling(size=timedelta(minutes=1), grace=timedelta(hours=1)), step="1m")
          .aggregate(Stats(of=lambda r: r.value))
          .updates()
          .to(AGGREGATES))

Nothing runs at declaration time: `Job.plan()` checks the graph (every stateful step has a
unique `step` id, every stream ends somewhere, stateful steps see co-partitioned keys) and
the runtime (or the test driver) runs the plan's operators over batches of records; before
consuming, the runtime checks that the topics a join reads are co-partitioned
(`Plan.check_copartitioning`). A global table (`Job.global_table`) is exempt: every task
reads its topic whole, so it is joined by any key and never checked.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from pipeline.streams.items import KeyedBatch, Windowed, duration_millis
from pipeline.streams.windows import Hopping, Session, Sliding, Tumbling, WindowKind

if TYPE_CHECKING:
    from pipeline.streams.aggregates import Aggregate
    from pipeline.streams.ranking import Ranking

K = TypeVar("K", bound=Hashable)
K2 = TypeVar("K2", bound=Hashable)
V = TypeVar("V")
W = TypeVar("W")
R = TypeVar("R")
U = TypeVar("U")
S = TypeVar("S")


class JobDefinitionError(ValueError):
    """A job's declaration cannot run as written (the message says what to change)."""


@dataclass(frozen=True, slots=True)
class Sink(Generic[V]):
    """A named destination of a job's values, bound to an adapter by the runtime (a table, a
    topic, a time-series measurement). A sink with a `topic` is that Kafka topic: a job
    whose sinks are all topics runs under Kafka authority (each batch one Kafka
    transaction); one whose sinks are none runs under database authority."""

    name: str
    value: type[V]
    description: str = ""
    topic: str | None = None


@dataclass(eq=False)
class Node:
    """One step of a plan: its id, kind, parents and parameters."""

    id: str
    kind: str
    parents: tuple[Node, ...]
    params: dict[str, Any] = field(default_factory=dict)
    stateful: bool = False
    copartitioned: bool = True
    """Whether the items' keys still determine their source partition (False after a
    `key_by` that was not declared co-partitioned)."""
    children: list[Node] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Node({self.id!r}, {self.kind})"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A topic a job consumes, the type its records decode to, and how key and event time
    are taken from a value."""

    topic: str
    value: type[Any]
    key: Callable[[Any], Hashable]
    event_time: Callable[[Any], datetime]
    node: Node


T = TypeVar("T")

JoinHow = Literal["inner", "left"]
"""`inner`: only matched records leave a join; `left`: a left record without a match
leaves too, joined with None."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A (compacted) topic a job materializes as a table: the type its records decode to,
    the key of a value, and the key of a tombstone (a record with a null value, which
    deletes its key) decoded from the record's key bytes."""

    topic: str
    value: type[Any]
    key: Callable[[Any], Hashable]
    record_key: Callable[[bytes], Hashable]
    node: Node


def _utf8(key: bytes) -> str:
    return key.decode()


@dataclass(slots=True)
class GlobalTableSpec:
    """A (compacted) topic every task reads whole (Kafka Streams' GlobalKTable): the type
    its records decode to. The runtime materializes it outside the job's partitions and
    binds its lookup (`GlobalTable.bind`) before the job runs."""

    topic: str
    value: type[Any]
    lookup: Callable[[Any], Any] | None = None


class GlobalTable(Generic[K, V]):
    """A table every task holds in full, whatever partitions it was assigned: what
    `Stream.join_global` looks keys up in. Nothing of it is job state: each process reads
    the topic from its beginning at start and follows it (its topic needs no
    co-partitioning with anything)."""

    def __init__(self, job: Job, spec: GlobalTableSpec) -> None:
        self._job = job
        self.spec = spec

    def bind(self, lookup: Callable[[K], V | None]) -> None:
        """Where the job finds a key's current row (None: no row): the runtime binds the
        table it materialized, the test driver its own."""
        self.spec.lookup = lookup


class Table(Generic[K, V]):
    """The latest value per key of a topic, kept as the state of the job's partitions
    (Kafka Streams' KTable): what `Stream.join_table` looks keys up in."""

    def __init__(self, job: Job, spec: TableSpec) -> None:
        self._job = job
        self.spec = spec

    @property
    def node(self) -> Node:
        """The table's step (its state is the table)."""
        return self.spec.node


def _lineage(node: Node) -> list[Node]:
    """`node` and every step it descends from."""
    found = {id(node): node}
    todo = [node]
    while todo:
        for parent in todo.pop().parents:
            if id(parent) not in found:
                found[id(parent)] = parent
                todo.append(parent)
    return list(found.values())


def _rekeyed_by(node: Node) -> Node | None:
    """The `key_by` step `node` descends from, if any."""
    return next((n for n in _lineage(node) if n.kind == "key_by"), None)


def _topics_of(node: Node) -> set[str]:
    """The source and table topics `node` reads from, through its ancestors."""
    return {n.params["topic"] for n in _lineage(node) if n.kind in ("source", "table")}


class Stream(Generic[K, V]):
    """A stream of keyed, event-timed values: what the steps of a job are chained on."""

    def __init__(self, job: Job, node: Node) -> None:
        self._job = job
        self.node = node

    def _then(self, kind: str, **params: Any) -> Node:
        return self._job._add(kind, (self.node,), params)

    def map(self, fn: Callable[[V], W], *, name: str | None = None) -> Stream[K, W]:
        """Each value replaced by `fn(value)`; key and event time kept."""
        return Stream(self._job, self._then("map", fn=fn, name=name))

    def filter(self, predicate: Callable[[V], bool], *, name: str | None = None) -> Stream[K, V]:
        """Only the values for which `predicate` is true."""
        return Stream(self._job, self._then("filter", fn=predicate, name=name))

    def flat_map(self, fn: Callable[[V], Iterable[W]], *, name: str | None = None) -> Stream[K, W]:
        """Each value replaced by the values `fn` returns (none, one or many)."""
        return Stream(self._job, self._then("flat_map", fn=fn, name=name))

    def map_batch(
        self, fn: Callable[[list[V]], Sequence[W]], *, name: str | None = None
    ) -> Stream[K, W]:
        """Each batch's values replaced at once by `fn(values)`, which returns one value per
        value, in order (for work that is cheap only in bulk, e.g. scoring with a model);
        keys and event times kept."""
        return Stream(self._job, self._then("map_batch", fn=fn, name=name))

    def scan(self, fn: Callable[[S | None, V], tuple[S, W]], *, step: str) -> Stream[K, W]:
        """A running fold per key: `fn(state, value)` returns the key's new state and the
        value to emit (`state` is None for a key's first value). The states are the step's
        keyed state, kept and restored like a window's; `step` names it."""
        return Stream(self._job, self._job._add("scan", (self.node,), {"fn": fn}, step=step))

    def scan_batch(
        self,
        fn: Callable[[KeyedBatch[K, S, V]], tuple[Sequence[S | None], Iterable[tuple[int, W]]]],
        *,
        step: str,
    ) -> Stream[K, W]:
        """A running fold per key, a whole batch at a time (for folds that are cheap only
        in bulk, e.g. column-wise over the batch): `fn(batch)` gets the batch's values and
        the state of each key they carry (`KeyedBatch`), and returns each key's new state,
        in the order of `batch.states` (None deletes the key's state), and the values to
        emit, as `(index, value)` pairs: `value` leaves with the key, event time and record
        of `batch.values[index]`, in the order returned (none, one or several per value).
        The states are the step's keyed state, kept and restored like `scan`'s; `step`
        names it."""
        node = self._job._add("scan_batch", (self.node,), {"fn": fn}, step=step)
        return Stream(self._job, node)

    @overload
    def validate(
        self,
        check: Callable[[V], object],
        *,
        rejects: tuple[type[BaseException], ...] = ...,
        name: str | None = ...,
        wall_clock: Literal[False] = ...,
        dead_letter: bool = ...,
        screen: Callable[[Sequence[V]], Iterable[int]] | None = ...,
    ) -> Stream[K, V]: ...

    @overload
    def validate(
        self,
        check: Callable[[V, datetime], object],
        *,
        rejects: tuple[type[BaseException], ...] = ...,
        name: str | None = ...,
        wall_clock: Literal[True],
        dead_letter: bool = ...,
        screen: Callable[[Sequence[V], datetime], Iterable[int]] | None = ...,
    ) -> Stream[K, V]: ...

    def validate(
        self,
        check: Callable[[V], object] | Callable[[V, datetime], object],
        *,
        rejects: tuple[type[BaseException], ...] = (ValueError,),
        name: str | None = None,
        wall_clock: bool = False,
        dead_letter: bool = True,
        screen: Callable[[Sequence[V]], Iterable[int]]
        | Callable[[Sequence[V], datetime], Iterable[int]]
        | None = None,
    ) -> Stream[K, V]:
        """Values for which `check` raises one of `rejects` leave the stream as rejections
        (dead letters, classed by the error's `rule` or `error_class` attribute, else its
        type name); any other error is a bug and propagates. With `wall_clock=True`, a
        rule that depends on the time (nothing from the future) is called `check(value,
        now)`: `now` is the wall-clock time of the batch, read once per batch by the
        runtime (the test driver's virtual clock), as Kafka Streams caches system time.
        With `dead_letter=False` a rejection is counted, not dead-lettered: for a topic two
        jobs read and validate alike, where the other job's dead letter is the one.

        `screen` (optional) checks a whole batch at once, column-wise: `screen(values)`
        (`screen(values, now)` with `wall_clock`) returns the indexes of the values that
        may break a rule, and only those are passed to `check`. It must name every value
        `check` would reject (the others pass unchecked); `check` stays the judge of the
        ones it names."""
        node = self._then(
            "validate",
            fn=check,
            rejects=rejects,
            wall_clock=wall_clock,
            dead_letter=dead_letter,
            name=name,
            screen=screen,
        )
        return Stream(self._job, node)

    def key_by(
        self, fn: Callable[[V], K2], *, copartitioned: bool = False, name: str | None = None
    ) -> Stream[K2, V]:
        """Re-key the stream: explicit, and never an implicit repartition topic. A stateful
        step after it needs `copartitioned=True` (the new key is a function of the old one,
        so a key's records still come from one partition); otherwise write the stream to a
        topic keyed by the new key and consume that in another job."""
        node = self._then("key_by", fn=fn, name=name)
        node.copartitioned = copartitioned and self.node.copartitioned
        return Stream(self._job, node)

    def split(
        self, predicate: Callable[[V], bool], *, name: str | None = None
    ) -> tuple[Stream[K, V], Stream[K, V]]:
        """Two streams: the values for which `predicate` is true (a side output), and the
        rest."""
        node = self._then("split", fn=predicate, name=name)
        matching = self._job._add("branch", (node,), {"side": True})
        rest = self._job._add("branch", (node,), {"side": False})
        return Stream(self._job, matching), Stream(self._job, rest)

    @overload
    def window(self, kind: Session, *, step: str) -> SessionWindowedStream[K, V]: ...

    @overload
    def window(self, kind: Tumbling | Hopping | Sliding, *, step: str) -> WindowedStream[K, V]: ...

    def window(
        self, kind: WindowKind, *, step: str
    ) -> WindowedStream[K, V] | SessionWindowedStream[K, V]:
        """Group the stream by key into windows of event time (see `pipeline.streams.
        windows`); `step` names its state, which survives code edits under that name."""
        if isinstance(kind, Session):
            return SessionWindowedStream(self, kind, step)
        return WindowedStream(self, kind, step)

    def top_k(
        self: Stream[K, Windowed[K, R]],
        k: int,
        *,
        by: Callable[[R], float],
        step: str,
    ) -> Stream[int, Ranking[K, R]]:
        """Per window, the `k` keys of a partition with the largest `by(result)`, emitted
        once when the window closes (see `pipeline.streams.ranking`: the scope is one
        partition; rank again in a single-partition job for a global top k)."""
        if k < 1:
            raise JobDefinitionError(f"top_k step {step!r}: k must be at least 1")
        window = _window_step_of(self.node)
        node = self._job._add(
            "top_k", (self.node,), {"k": k, "by": by, "window": window}, step=step
        )
        return Stream(self._job, node)

    def to(self, sink: Sink[V]) -> None:
        """Send the stream's values to `sink`."""
        node = self._then("sink", sink=sink)
        self._job._sinks.setdefault(sink.name, sink)
        del node

    def peek(self, fn: Callable[[V], object], *, name: str | None = None) -> Stream[K, V]:
        """Call `fn` on every value (for debugging or counting); the stream is unchanged."""
        return Stream(self._job, self._then("peek", fn=fn, name=name))

    @overload
    def join_table(
        self,
        table: Table[K, T],
        joiner: Callable[[V, T], R],
        *,
        how: Literal["inner"] = "inner",
        name: str | None = None,
    ) -> Stream[K, R]: ...

    @overload
    def join_table(
        self,
        table: Table[K, T],
        joiner: Callable[[V, T | None], R],
        *,
        how: Literal["left"],
        name: str | None = None,
    ) -> Stream[K, R]: ...

    def join_table(
        self,
        table: Table[K, Any],
        joiner: Callable[[V, Any], R],
        *,
        how: JoinHow = "inner",
        name: str | None = None,
    ) -> Stream[K, R]:
        """Each value joined with the table's value for its key, as the table is when the
        record is processed (Kafka Streams' KStream–KTable join): `joiner(value, row)`. A
        key the table lacks drops the record (`inner`) or joins it with None (`left`). An
        update of the table joins nothing by itself; key and event time are kept.

        The stream must be keyed as its topic is partitioned (no `key_by` before it) and the
        table's topic co-partitioned with it: `Plan.check_copartitioning` checks the counts."""
        self._check_join("join_table", table._job, how)
        params = {"joiner": joiner, "how": how, "table": table.spec.topic, "name": name}
        return Stream(self._job, self._job._add("join_table", (self.node, table.node), params))

    @overload
    def join_global(
        self,
        table: GlobalTable[K2, T],
        joiner: Callable[[V, T], R],
        *,
        key: Callable[[V], K2],
        how: Literal["inner"] = "inner",
        name: str | None = None,
    ) -> Stream[K, R]: ...

    @overload
    def join_global(
        self,
        table: GlobalTable[K2, T],
        joiner: Callable[[V, T | None], R],
        *,
        key: Callable[[V], K2],
        how: Literal["left"],
        name: str | None = None,
    ) -> Stream[K, R]: ...

    def join_global(
        self,
        table: GlobalTable[Any, Any],
        joiner: Callable[[V, Any], R],
        *,
        key: Callable[[V], Any],
        how: JoinHow = "inner",
        name: str | None = None,
    ) -> Stream[K, R]:
        """Each value joined with the global table's row for `key(value)`, as the table is
        when the record is processed (Kafka Streams' KStream–GlobalKTable join):
        `joiner(value, row)`. A key the table lacks drops the record (`inner`) or joins it
        with None (`left`). The stream's key and event time are kept; any key will do (the
        table is whole in every task), so neither co-partitioning nor the stream's keying
        matters."""
        job = self._job
        if table._job is not job:
            raise JobDefinitionError(
                f"job {job.name!r}: join_global with a global table of another job"
            )
        if how not in ("inner", "left"):
            raise JobDefinitionError(
                f"job {job.name!r}: join_global how={how!r}: use 'inner' or 'left'"
            )
        params = {"joiner": joiner, "key": key, "how": how, "table": table.spec, "name": name}
        return Stream(job, self._then("join_global", **params))

    @overload
    def join(
        self,
        other: Stream[K, T],
        joiner: Callable[[V, T], R],
        *,
        before: timedelta,
        after: timedelta,
        grace: timedelta,
        how: Literal["inner"] = "inner",
        step: str,
        matches: Callable[[V, T], bool] | None = None,
    ) -> JoinedStream[K, R]: ...

    @overload
    def join(
        self,
        other: Stream[K, T],
        joiner: Callable[[V, T | None], R],
        *,
        before: timedelta,
        after: timedelta,
        grace: timedelta,
        how: Literal["left"],
        step: str,
        matches: Callable[[V, T], bool] | None = None,
    ) -> JoinedStream[K, R]: ...

    def join(
        self,
        other: Stream[K, Any],
        joiner: Callable[[V, Any], R],
        *,
        before: timedelta,
        after: timedelta,
        grace: timedelta,
        how: JoinHow = "inner",
        step: str,
        matches: Callable[[V, Any], bool] | None = None,
    ) -> JoinedStream[K, R]:
        """Interval join (Kafka Streams' `JoinWindows`): each pair of a value of this
        stream and one of `other` with the same key whose event times satisfy
        `left.time − before ≤ right.time ≤ left.time + after` becomes `joiner(left, right)`,
        timed at the later of the two. With `how="left"`, a left value that found no match
        becomes `joiner(left, None)` once its interval has closed (see
        `pipeline.streams.joins` for when a record is late and how long state is kept).
        `matches(left, right)`, if given, is a further join condition: a pair it rejects is
        not joined and is no match, so a left value that met only such pairs still becomes
        `joiner(left, None)`. `step` names the buffered records' state."""
        self._check_join("join", other._job, how)
        try:
            spans = {
                "before": duration_millis(before),
                "after": duration_millis(after),
                "grace": duration_millis(grace),
            }
        except ValueError as error:
            raise JobDefinitionError(f"join step {step!r}: {error}") from None
        params = {"joiner": joiner, "matches": matches, "how": how, **spans}
        node = self._job._add("join", (self.node, other.node), params, step=step)
        return JoinedStream(self._job, self._job._add("results", (node,), {}), node)

    def _check_join(self, what: str, other: Job, how: str) -> None:
        job = self._job
        if other is not job:
            raise JobDefinitionError(
                f"job {job.name!r}: {what} with a stream or table of another job"
            )
        if how not in ("inner", "left"):
            raise JobDefinitionError(f"job {job.name!r}: {what} how={how!r}: use 'inner' or 'left'")
        rekeyed = _rekeyed_by(self.node)
        if rekeyed is not None:
            raise JobDefinitionError(
                f"job {job.name!r}: {what} after {rekeyed.id!r}: a join finds a key's records "
                "only in the partition its topics are keyed to, and a re-keyed stream's key "
                "is not the one its records were partitioned by (even a co-partitioned "
                "key_by only keeps a key within one partition, not the partition the other "
                "topic puts that key in); join before re-keying, or write the re-keyed stream "
                "to a topic keyed by the new key and join that in another job"
            )


class JoinedStream(Stream[K, R]):
    """The result of an interval join, whose late records can be routed."""

    def __init__(self, job: Job, node: Node, join: Node) -> None:
        super().__init__(job, node)
        self._join = join

    def late(self) -> Stream[K, Any]:
        """Records of either side that arrived after their interval closed (their values as
        they reached the join). Without this, the runtime sends them to `<topic>.late`."""
        return Stream(self._job, self._job._add("late", (self._join,), {}))


class _Windowing(Generic[K, V]):
    def __init__(self, stream: Stream[K, V], kind: WindowKind, step: str) -> None:
        self._stream = stream
        self._kind = kind
        self._step = step


class WindowedStream(_Windowing[K, V]):
    """A stream grouped into tumbling, hopping or sliding windows, waiting for its aggregate."""

    def aggregate(self, aggregate: Aggregate[V, Any, R]) -> AggregatedWindows[K, R, R]:
        """Fold each window's values with `aggregate`."""
        return AggregatedWindows(self._stream._job, _window_node(self, aggregate))


class SessionWindowedStream(_Windowing[K, V]):
    """A stream grouped into session windows, waiting for its aggregate. Their updates
    include tombstones (see `pipeline.streams.session_windows`), hence a type of their own."""

    def aggregate(self, aggregate: Aggregate[V, Any, R]) -> AggregatedWindows[K, R, R | None]:
        """Fold each session's values with `aggregate`."""
        return AggregatedWindows(self._stream._job, _window_node(self, aggregate))


def _window_node(windowed: _Windowing[Any, Any], aggregate: Aggregate[Any, Any, Any]) -> Node:
    stream = windowed._stream
    return stream._job._add(
        "window",
        (stream.node,),
        {"kind": windowed._kind, "aggregate": aggregate},
        step=windowed._step,
    )


class AggregatedWindows(Generic[K, R, U]):
    """Aggregated windows: choose when results leave, and where late records go. `R` is
    the result of a window, `U` what an update carries (R, or R | None for sessions)."""

    def __init__(self, job: Job, node: Node) -> None:
        self._job = job
        self.node = node

    def final(self) -> Stream[K, Windowed[K, R]]:
        """One result per window, when it closes (Kafka Streams' `suppress(untilWindowCloses)`)."""
        return self._emit(final_only=True)

    def updates(self, *, every: timedelta | None = None) -> Stream[K, Windowed[K, U]]:
        """The window's current result after every batch that changed it (`final` False),
        and nothing more at close: for sinks that upsert by key and window (a session's
        superseded windows come as tombstones, value None).

        With `every` (tumbling and hopping windows), the windows changed since their last
        update are emitted together at most once per `every` of wall-clock time, and a
        window not emitted since its last change is emitted when it closes and when the
        worker stops: a sink then upserts each busy window once per `every`, not once per
        batch (Kafka Streams' record cache, flushed every commit interval, does the same).
        The state is still made durable with every batch; after a restore every window
        is emitted again, once."""
        if every is not None:
            if every <= timedelta(0):
                raise JobDefinitionError(f"window step {self.node.id!r}: every must be > 0")
            if not isinstance(self.node.params["kind"], Tumbling | Hopping):
                raise JobDefinitionError(
                    f"window step {self.node.id!r}: updates(every=...) is for tumbling and "
                    "hopping windows"
                )
        stream: Stream[K, Windowed[K, U]] = self._emit(final_only=False)
        self.node.params["emit_every"] = None if every is None else duration_millis(every)
        return stream

    def late(self) -> Stream[K, Any]:
        """Records that arrived after their window closed (their values as they reached
        the window). Without this, the runtime sends them to `<source topic>.late`."""
        node = self._job._add("late", (self.node,), {})
        self.node.params["late_routed"] = True
        return Stream(self._job, node)

    def _emit(self, *, final_only: bool) -> Stream[K, Any]:
        if "final_only" in self.node.params:
            raise JobDefinitionError(
                f"window step {self.node.id!r}: choose .final() or .updates() once"
            )
        self.node.params["final_only"] = final_only
        return Stream(self._job, self._job._add("results", (self.node,), {}))


_PASS_THROUGH = ("results", "filter", "peek", "branch", "split")
"""Steps that may stand between a window step and `top_k` (they keep values `Windowed`)."""


def _window_step_of(node: Node) -> Node:
    """The tumbling or hopping window step whose results reach `node`."""
    current = node
    while current.kind in _PASS_THROUGH and len(current.parents) == 1:
        current = current.parents[0]
    if current.kind != "window":
        raise JobDefinitionError(
            f"top_k after step {node.id!r}: it ranks the results of a window step, so follow "
            ".window(...).aggregate(...).final() or .updates(), with only filter, peek or "
            "split between"
        )
    if not isinstance(current.params["kind"], Tumbling | Hopping):
        raise JobDefinitionError(
            f"top_k after window step {current.id!r}: keys share windows only in tumbling and "
            "hopping windows (session and sliding windows are each key's own)"
        )
    return current


class Job:
    """A named stream-processing job: its sources, steps and sinks.

    `out_of_orderness` is how far behind a partition's largest event time a record may
    still arrive in order (the watermark is that largest time minus it); `idle_timeout` is
    how long a partition may send nothing before its watermark follows the wall clock, so a
    key or partition that goes quiet still has its last windows closed.

    `max_ahead`: a record whose event time lies further than this ahead of the batch's wall
    clock does not move its partition's stream time, so one record from a producer with a
    broken clock cannot make every later record late. The record itself still flows (a
    `validate` step rejecting such times usually makes it a dead letter). None: every record
    moves it."""

    def __init__(
        self,
        name: str,
        *,
        out_of_orderness: timedelta = timedelta(0),
        idle_timeout: timedelta = timedelta(seconds=30),
        max_ahead: timedelta | None = None,
        description: str = "",
    ) -> None:
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise JobDefinitionError(f"job name {name!r}: use letters, digits, - and _")
        self.name = name
        self.description = description
        self.out_of_orderness_ms = duration_millis(out_of_orderness)
        self.idle_timeout_ms = duration_millis(idle_timeout)
        self.max_ahead_ms = None if max_ahead is None else duration_millis(max_ahead)
        self.sources: dict[str, SourceSpec] = {}
        self.tables: dict[str, TableSpec] = {}
        self.global_tables: dict[str, GlobalTableSpec] = {}
        self._nodes: list[Node] = []
        self._ids: set[str] = set()
        self._sinks: dict[str, Sink[Any]] = {}
        self._plan: Plan | None = None

    def source(
        self,
        topic: str,
        value: type[V],
        *,
        key: Callable[[V], K],
        event_time: Callable[[V], datetime],
    ) -> Stream[K, V]:
        """The stream of `topic`'s records, decoded to `value` by the runtime's codec for
        that type, keyed by `key(value)` and timed by `event_time(value)`."""
        self._check_new_topic(topic)
        node = self._add("source", (), {"topic": topic}, step=f"source:{topic}")
        self.sources[topic] = SourceSpec(topic, value, key, event_time, node)
        return Stream(self, node)

    def table(
        self,
        topic: str,
        value: type[V],
        *,
        key: Callable[[V], K],
        record_key: Callable[[bytes], K] | None = None,
    ) -> Table[K, V]:
        """The table of `topic` (a compacted topic): the latest value per key, decoded to
        `value` and keyed by `key(value)`; a record with a null value (tombstone) deletes
        the key that `record_key` decodes from the record's key (UTF-8 text by default).
        Its state is the step `table:<topic>`, per partition like any state; its records
        never move watermarks (a table has no event time)."""
        self._check_new_topic(topic)
        node = self._add("table", (), {"topic": topic}, step=f"table:{topic}")
        spec = TableSpec(topic, value, key, record_key or _utf8, node)
        self.tables[topic] = spec
        return Table(self, spec)

    def global_table(self, topic: str, value: type[V]) -> GlobalTable[Any, V]:
        """The global table of `topic` (a compacted topic), read whole by every task: its
        rows decoded to `value` by the runtime's table codec for the topic, which also says
        a record's key (a tombstone, or a row the codec maps to None, deletes it). Join it
        with `Stream.join_global`. It is no job state and moves no watermark: the runtime
        reads it from its beginning before the job consumes, and follows it while it runs."""
        self._check_new_topic(topic)
        if self._plan is not None:
            raise JobDefinitionError(f"job {self.name!r} is planned already; declare steps first")
        spec = GlobalTableSpec(topic, value)
        self.global_tables[topic] = spec
        return GlobalTable(self, spec)

    def _check_new_topic(self, topic: str) -> None:
        if topic in self.sources or topic in self.tables or topic in self.global_tables:
            raise JobDefinitionError(f"job {self.name!r} reads topic {topic!r} twice")

    def _add(
        self,
        kind: str,
        parents: tuple[Node, ...],
        params: dict[str, Any],
        *,
        step: str | None = None,
    ) -> Node:
        if self._plan is not None:
            raise JobDefinitionError(f"job {self.name!r} is planned already; declare steps first")
        stateful = step is not None and kind != "source"
        if step is None:
            name = params.get("name")
            base = f"{kind}:{name}" if name else kind
            step = base
            n = 1
            while step in self._ids:
                n += 1
                step = f"{base}#{n}"
        elif step in self._ids:
            raise JobDefinitionError(f"job {self.name!r}: step id {step!r} is used twice")
        node = Node(
            id=step,
            kind=kind,
            parents=parents,
            params=params,
            stateful=stateful,
            copartitioned=all(p.copartitioned for p in parents) if parents else True,
        )
        if stateful and not node.copartitioned:
            raise JobDefinitionError(
                f"job {self.name!r}: stateful step {step!r} follows a key_by whose new key may "
                "span partitions; declare key_by(..., copartitioned=True) if the new key is a "
                "function of the old one, or write the stream to a topic keyed by the new key "
                "and consume it in another job"
            )
        for parent in parents:
            parent.children.append(node)
        self._nodes.append(node)
        self._ids.add(step)
        return node

    @property
    def sinks(self) -> dict[str, Sink[Any]]:
        """The job's sinks by name."""
        return dict(self._sinks)

    def plan(self) -> Plan:
        """The checked, immutable plan of this job (built once)."""
        if self._plan is None:
            if not self.sources:
                raise JobDefinitionError(f"job {self.name!r} has no source")
            joined = {
                node.params["table"].topic for node in self._nodes if node.kind == "join_global"
            }
            for topic in self.global_tables:
                if topic not in joined:
                    raise JobDefinitionError(
                        f"job {self.name!r}: global table {topic!r} is never joined"
                    )
            for node in self._nodes:
                if node.kind == "table" and not node.children:
                    raise JobDefinitionError(
                        f"job {self.name!r}: table {node.params['topic']!r} is never joined"
                    )
                ends = node.kind in ("sink", "late") or node.kind == "window"
                if not node.children and not ends:
                    raise JobDefinitionError(
                        f"job {self.name!r}: step {node.id!r} leads nowhere; end it with .to(...)"
                    )
                if node.kind == "window" and "final_only" not in node.params:
                    raise JobDefinitionError(
                        f"job {self.name!r}: window step {node.id!r} needs .final() or .updates()"
                    )
            self._plan = Plan(self, tuple(self._nodes))
        return self._plan


@dataclass(frozen=True, eq=False)
class Plan:
    """A job's steps in declaration order (parents before children)."""

    job: Job
    nodes: tuple[Node, ...]

    @property
    def stateful_steps(self) -> tuple[str, ...]:
        """The ids of the steps that keep state."""
        return tuple(node.id for node in self.nodes if node.stateful)

    def copartitioned_topics(self) -> tuple[tuple[str, ...], ...]:
        """The groups of topics that must have the same number of partitions because a
        join reads them together (a task joins partition p of each with partition p of the
        others), sorted."""
        groups: list[set[str]] = []
        for node in self.nodes:
            if node.kind not in ("join", "join_table"):
                continue
            group = _topics_of(node)
            for other in [g for g in groups if g & group]:
                group |= other
                groups.remove(other)
            groups.append(group)
        return tuple(sorted(tuple(sorted(g)) for g in groups if len(g) > 1))

    def check_copartitioning(self, partitions: Mapping[str, int]) -> None:
        """Raise `JobDefinitionError` unless the topics of every group of
        `copartitioned_topics` have the same count in `partitions` (topic → partition
        count, as the broker reports it): the runtime calls this before consuming."""
        name = self.job.name
        for group in self.copartitioned_topics():
            missing = [topic for topic in group if topic not in partitions]
            if missing:
                raise JobDefinitionError(
                    f"job {name!r}: the partition count of {', '.join(missing)} is unknown "
                    "(does the topic exist?)"
                )
            if len({partitions[topic] for topic in group}) > 1:
                counts = ", ".join(f"{topic} has {partitions[topic]}" for topic in group)
                raise JobDefinitionError(
                    f"job {name!r} joins topics that are not co-partitioned ({counts} "
                    "partitions): a join meets a key's records only if every joined topic "
                    "has the same number of partitions and is keyed alike; recreate one "
                    "topic with the other's partition count, or copy it into one that has it"
                )
