"""Finding the rows a store refuses for good, so that one record never stops a job.

A batch's checkpoint can fail permanently (not transiently) because of what one of its rows
holds: a value the database cannot store, a constraint it breaks. Retrying fails the same
way after every restart and the partition would be stuck behind it. `isolate_poison`
bisects the batch's sink rows instead: halves that store are stored (without state or
offsets: the batch's own checkpoint stores those afterwards), halves that fail are split
again, until each failing row stands alone. Sinks under database authority are idempotent
(natural keys, upserts), so rows a half stored are not stored twice.

A failure that is not the rows' fault (an unmigrated database, a store that refuses even an
empty transaction, every row of a sink failing alike) is raised instead: dead-lettering a
whole stream because of a deployment mistake would be worse than stopping."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import structlog

from pipeline.application.errors import ConfigurationError, TransientError
from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore, SinkRows
from pipeline.application.ports.records import Record

log = structlog.get_logger(__name__)

NOT_THE_RECORDS_FAULT = (TransientError, ConfigurationError)
"""Errors a batch is never bisected for: the worker retries or stops on them."""

SYSTEMIC_AT = 8
"""A sink whose batch holds at least this many rows that all fail alone is the store's
fault, not the records'. Below it, all failing proves little (two bad records on a trickle
of traffic), and stopping the worker there would stop it on the same records after every
restart."""


@dataclass(frozen=True, slots=True)
class Poison:
    """A row the store refused on its own, where it came from, and the error."""

    sink: str
    row: object
    origin: Record | None
    error: Exception


@dataclass(slots=True)
class Isolation:
    """The outcome of bisecting a batch: its poison, and what storing the rest wrote."""

    poison: list[Poison] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    events: list[object] = field(default_factory=list)


Row = tuple[str, object, int, Record | None]


async def isolate_poison(
    store: CheckpointStore, batch: CheckpointBatch, error: Exception
) -> tuple[CheckpointBatch, Isolation]:
    """Store every sink row of `batch` (which failed with `error`) except those that fail
    on their own; return the batch without them, and what was found and written. Raises
    `error` when the failure is not the rows' fault."""
    try:
        await store.commit(_rows_only(batch.group_id, []))
    except NOT_THE_RECORDS_FAULT:
        raise
    except Exception:  # noqa: BLE001 - any failure of an empty transaction is the store's
        raise error from None
    rows: list[Row] = [
        (w.sink, row, part, origin)
        for w in batch.writes
        for row, part, origin in zip(w.rows, w.parts, w.origins, strict=True)
    ]
    isolation = Isolation()
    await _bisect(store, batch.group_id, rows, isolation)
    for write in batch.writes:
        refused_here = sum(1 for p in isolation.poison if p.sink == write.sink)
        if len(write.rows) >= SYSTEMIC_AT and refused_here == len(write.rows):
            raise error  # every row of a sink fails alike: not something in the records
    refused = {id(p.row) for p in isolation.poison}
    for item in isolation.poison:
        log.warning(
            "row refused by the store",
            sink=item.sink,
            topic=item.origin.topic if item.origin else None,
            partition=item.origin.partition if item.origin else None,
            offset=item.origin.offset if item.origin else None,
            error=str(item.error),
        )
    kept = _rows_only(batch.group_id, [r for r in rows if id(r[1]) not in refused]).writes
    return dataclasses.replace(batch, writes=kept), isolation


async def _bisect(store: CheckpointStore, group_id: str, rows: list[Row], into: Isolation) -> None:
    if not rows:
        return
    try:
        committed = await store.commit(_rows_only(group_id, rows))
    except NOT_THE_RECORDS_FAULT:
        raise
    except Exception as error:  # noqa: BLE001 - whatever a row triggers
        if len(rows) == 1:
            sink, row, _, origin = rows[0]
            into.poison.append(Poison(sink, row, origin, error))
            return
        middle = len(rows) // 2
        await _bisect(store, group_id, rows[:middle], into)
        await _bisect(store, group_id, rows[middle:], into)
        return
    for sink, count in committed.written.items():
        into.written[sink] = into.written.get(sink, 0) + count
    into.events.extend(committed.events)


def _rows_only(group_id: str, rows: list[Row]) -> CheckpointBatch:
    # No offsets, state or dead letters: only rows. The batch's own checkpoint stores the
    # rest once every row is either stored or refused.
    by_sink: dict[str, tuple[list[object], list[int], list[Record | None]]] = {}
    for sink, row, part, origin in rows:
        found = by_sink.setdefault(sink, ([], [], []))
        found[0].append(row)
        found[1].append(part)
        found[2].append(origin)
    writes = [
        SinkRows(sink=sink, rows=r, parts=p, origins=o) for sink, (r, p, o) in by_sink.items()
    ]
    return CheckpointBatch(group_id=group_id, start_offsets={}, next_offsets={}, writes=writes)
