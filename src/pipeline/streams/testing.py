"""A deterministic driver for jobs: the same job code, no broker, a virtual clock.

    driver = TestDriver(job, partitions=2, now=datetime(2026, 1, 1, tzinfo=UTC))
    driver.send("sensor-readings", reading)          # partition from the job's key
    driver.send("accounts", None, key="a-1")         # a table's tombstone
    driver.send("sensor-metadata", row, key="s-1")   # a global table's row (None: deleted)
    driver.run()                                     # one batch, checkpointed
    driver.advance(timedelta(minutes=2))             # wall clock: idle partitions move on
    assert driver.results("aggregates") == [...]

The driver is a tiny runtime around a `Task`: an in-memory log per topic and partition,
offsets, and a backing for state. `run(commit=False)` processes a batch without making it
durable, so `crash()` after it loses exactly what a SIGKILL would: the batch's outputs,
state changes and offsets; the records are read again after the restore. A partition with
records not read yet is never idle (as the runtime knows from its consumer): sending
records and advancing the clock before `run` simulates a backlog slow to arrive. `rebalance()`
moves partitions away and back, restoring their state from the backing.
`replay(from_offset=N)` starts over from offset N as `pipeline replay` does under database
authority (a new group), `rewind(from_offset=N)` as it does under Kafka authority (the same
group, moved back). Nothing here sleeps or depends on the real clock, so a test runs in
milliseconds.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterable
from datetime import datetime, timedelta
from typing import Any

from pipeline.streams.items import (
    Late,
    Rejection,
    Tombstone,
    duration_millis,
    from_millis,
    to_millis,
)
from pipeline.streams.job import Job
from pipeline.streams.state import StateChange, loads
from pipeline.streams.task import Input, Output, Task, rewound_state


class TestDriver:
    """Feeds a job records and wall-clock time, checkpointing like the real runtime."""

    __test__ = False  # not a pytest class

    def __init__(
        self, job: Job, *, partitions: int = 1, now: datetime, assign: Iterable[int] | None = None
    ) -> None:
        self.job = job
        self.partitions = partitions
        self._now = to_millis(now)
        self._log: dict[tuple[str, int], list[Any]] = {}
        self._read: dict[tuple[str, int], int] = {}
        self._committed_offsets: dict[tuple[str, int], int] = {}
        self._backing: dict[tuple[str, int, bytes], bytes] = {}
        self._results: dict[str, list[Any]] = {}
        self.rejections: list[Rejection] = []
        """Committed rejections (dead letters), in order."""
        self.late: list[Late] = []
        """Committed late records that no `.late()` output took, in order."""
        self._partial: frozenset[int] = frozenset()
        self.task = Task(job.plan())
        self._assigned: set[int] = set()
        self._global_rows: dict[str, dict[Hashable, Any]] = {}
        self._global_pending: list[tuple[str, Hashable, Any]] = []
        for topic, spec in job.global_tables.items():
            rows = self._global_rows[topic] = {}
            spec.lookup = rows.get
        for part in assign if assign is not None else range(partitions):
            self._assign(part)

    # ------------------------------------------------------------------ input

    @property
    def now(self) -> datetime:
        """The virtual wall clock."""
        return from_millis(self._now)

    def send(
        self,
        topic: str,
        value: Any,
        *,
        key: Hashable | None = None,
        partition: int | None = None,
    ) -> int:
        """Append a record to `topic`'s log (partition from its key unless given: `key`,
        else the job's key of `value`); return its offset. It is processed by the next
        `run`. On a table's topic, `value` None with a `key` is a tombstone (it deletes the
        key from the table). On a global table's topic, `key` is the row's key, and the
        row (None: deleted) is what lookups find from the next `run` or `advance` on, as
        the runtime's table has read it by then; it returns -1 (no offset)."""
        if topic in self.job.global_tables:
            if key is None:
                raise ValueError(f"a row of the global table {topic!r} needs a key")
            self._global_pending.append((topic, key, value))
            return -1
        spec = self.job.sources.get(topic) or self.job.tables.get(topic)
        if spec is None:
            raise KeyError(f"job {self.job.name!r} does not read topic {topic!r}")
        if value is None:
            if key is None or topic not in self.job.tables:
                raise ValueError(
                    f"a record of {topic!r} with no value: only a table's topic "
                    "takes one (a tombstone), and it needs a key"
                )
            value = Tombstone(key)
        if partition is None:
            if key is None:
                key = spec.key(value)
            partition = zlib.crc32(repr(key).encode()) % self.partitions
        records = self._log.setdefault((topic, partition), [])
        records.append(value)
        return len(records) - 1

    def send_all(self, topic: str, values: Iterable[Any]) -> None:
        """`send` every value, partitioned by key."""
        for value in values:
            self.send(topic, value)

    def run(self, *, batch_size: int | None = None, commit: bool = True) -> Output:
        """Process the records not read yet, of the partitions assigned, in batches of
        `batch_size` (all at once by default), round-robin over partitions like a consumer.
        Each batch is checkpointed; with `commit=False` the last one is not (crash next)."""
        self._apply_global_rows()
        pending = self._unread()
        if not pending:
            out = self.task.process([], self._now, caught_up=self._caught_up([]))
            return self._checkpoint(out, [], commit=commit)
        size = batch_size or len(pending)
        out = Output()
        for start in range(0, len(pending), size):
            batch = pending[start : start + size]
            last = start + size >= len(pending)
            inputs: list[Input] = [(t, p, v, (t, p, o)) for t, p, o, v in batch]
            out = self._checkpoint(
                self.task.process(inputs, self._now, caught_up=self._caught_up(batch)),
                batch,
                commit=commit or not last,
            )
        return out

    def advance(self, by: timedelta, *, commit: bool = True) -> Output:
        """Move the wall clock on by `by` and let the job see it (no records)."""
        self._now += duration_millis(by)
        self._apply_global_rows()
        out = self.task.advance(self._now, caught_up=self._caught_up([]))
        return self._checkpoint(out, [], commit=commit)

    def stop(self) -> Output:
        """Stop as a worker does: what the job holds back (window updates emitted `every`)
        comes out, checkpointed."""
        self._apply_global_rows()
        out = self.task.advance(self._now, caught_up=self._caught_up([]), flush=True)
        return self._checkpoint(out, [], commit=True)

    def set_time(self, now: datetime) -> None:
        """Set the wall clock (it cannot go back); the next `run` or `advance` sees it."""
        millis = to_millis(now)
        if millis < self._now:
            raise ValueError("the wall clock cannot go back")
        self._now = millis

    # ------------------------------------------------------------------ failures

    def crash(self) -> None:
        """Lose everything not checkpointed: a new task restores the assigned partitions
        from the backing and reads again from the committed offsets."""
        self.task = Task(self.job.plan(), partial=self._partial)
        self._read = dict(self._committed_offsets)
        assigned, self._assigned = self._assigned, set()
        for part in sorted(assigned):
            self._assign(part)

    def rebalance(self, *, revoke: Iterable[int] = (), assign: Iterable[int] = ()) -> None:
        """Move partitions away (their state is released) and (back) in (restored)."""
        for part in revoke:
            self.task.release(part)
            self._assigned.discard(part)
            for key in list(self._read):
                if key[1] == part:
                    self._read[key] = self._committed_offsets.get(key, 0)
        for part in assign:
            self._assign(part)

    def replay(self, *, from_offset: int) -> None:
        """Start over as `pipeline replay --from-offset` does: a new consumer group, so a
        new task with no state, reading every assigned partition of every source topic
        from `from_offset`. Partitions read from past their first record are partial
        (see `Task`). What was committed so far (results, state, offsets, rejections, late
        records) is forgotten: what follows is the replay's own."""
        self._read = {key: min(from_offset, len(log)) for key, log in self._log.items()}
        self._committed_offsets = dict(self._read)
        self._partial = frozenset(part for (_, part), start in self._read.items() if start > 0)
        self.task = Task(self.job.plan(), partial=self._partial)
        self._backing.clear()
        self._results.clear()
        self.rejections.clear()
        self.late.clear()
        assigned, self._assigned = self._assigned, set()
        for part in sorted(assigned):
            self._assign(part)

    def rewind(self, *, from_offset: int) -> None:
        """Move back as `pipeline replay --from-offset` does for a job under Kafka
        authority, then start the job again: the same group, so what was committed
        (results, rejections, late records) stays, as it stays downstream. Every source
        partition committed past `from_offset` is read again from there, with its state
        emptied (and a replay horizon to set if that is past its first record: see
        `rewound_state`); the others keep their offsets and state."""
        moved: dict[int, bool] = {}
        for (topic, part), committed in self._committed_offsets.items():
            if topic in self.job.sources and from_offset < committed:
                moved[part] = moved.get(part, False) or from_offset > 0
        for (topic, part), committed in list(self._committed_offsets.items()):
            if part in moved and topic in self.job.sources:
                self._committed_offsets[(topic, part)] = min(from_offset, committed)
        for where in [where for where in self._backing if where[1] in moved]:
            del self._backing[where]
        for part, partial in moved.items():
            for step, entries in rewound_state(partial=partial).items():
                for key, value in entries:
                    self._backing[(step, part, key)] = value
        self._partial = frozenset()
        self.crash()

    # ------------------------------------------------------------------ output

    def results(self, sink: str) -> list[Any]:
        """The values committed to `sink`, in order."""
        return list(self._results.get(sink, ()))

    def state(self, step: str, part: int = 0) -> dict[Any, Any]:
        """The committed state of one step in one partition."""
        return {
            loads(key): loads(value)
            for (s, p, key), value in self._backing.items()
            if s == step and p == part
        }

    def watermark(self, part: int = 0) -> datetime:
        """The task's watermark for `part`."""
        return from_millis(self.task.watermarks[part])

    # ------------------------------------------------------------------ internals

    def _assign(self, part: int) -> None:
        entries: dict[str, list[tuple[bytes, bytes]]] = {}
        for (step, p, key), value in self._backing.items():
            if p == part:
                entries.setdefault(step, []).append((key, value))
        self.task.assign(part, entries, self._now)
        self._assigned.add(part)

    def _caught_up(self, batch: list[tuple[str, int, int, Any]]) -> set[tuple[str, int]]:
        """The assigned source partitions read to their end once `batch` is: as a consumer
        knows them, the only ones whose idle timers may run."""
        read = dict(self._read)
        for topic, part, offset, _ in batch:
            read[(topic, part)] = offset + 1
        return {
            (topic, part)
            for topic in self.job.sources
            for part in self._assigned
            if read.get((topic, part), 0) >= len(self._log.get((topic, part), ()))
        }

    def _apply_global_rows(self) -> None:
        for topic, key, value in self._global_pending:
            rows = self._global_rows[topic]
            if value is None:
                rows.pop(key, None)
            else:
                rows[key] = value
        self._global_pending.clear()

    def _unread(self) -> list[tuple[str, int, int, Any]]:
        queues: list[list[tuple[str, int, int, Any]]] = []
        for (topic, part), records in sorted(self._log.items()):
            if part not in self._assigned:
                continue
            start = self._read.get((topic, part), 0)
            queues.append([(topic, part, o, records[o]) for o in range(start, len(records))])
        out: list[tuple[str, int, int, Any]] = []
        while any(queues):
            for queue in queues:
                if queue:
                    out.append(queue.pop(0))
        return out

    def _checkpoint(
        self, out: Output, batch: list[tuple[str, int, int, Any]], *, commit: bool
    ) -> Output:
        changes: list[StateChange] = self.task.changes()
        for topic, part, offset, _ in batch:
            self._read[(topic, part)] = offset + 1
        if not commit:
            return out
        for change in changes:
            key = (change.step, change.part, change.key)
            if change.value is None:
                self._backing.pop(key, None)
            else:
                self._backing[key] = change.value
        for sink, items in out.sinks.items():
            self._results.setdefault(sink, []).extend(item.value for item in items)
        self.rejections.extend(out.rejected)
        self.late.extend(out.late)
        self._committed_offsets.update(
            {(topic, part): offset + 1 for topic, part, offset, _ in batch}
        )
        return out
