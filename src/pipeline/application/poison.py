"""Finding the records a store refuses for good, so that one record never stops a worker.

A batch's transaction can fail permanently (not transiently) because of what one of its
records holds: a value the database cannot store, a constraint it breaks, a bug its data
triggers. Retrying the batch fails the same way after every restart, and the partition would
be stuck behind it. `isolate_poison` bisects the batch instead: halves that store are stored
(without offsets: the batch's own transaction stores those later), halves that fail are split
again, until each failing record stands alone. The projection is idempotent, so rows stored
by a half are not stored twice when the batch itself is applied afterwards.

A failure that is not the records' fault (an unmigrated database, a store that refuses even
an empty transaction, every record failing alike) is raised instead: dead-lettering a whole
stream because of a deployment mistake would be worse than stopping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from pipeline.application.errors import ConfigurationError, TransientError
from pipeline.application.ports import ProjectedReading, SensorBatch, SensorStore
from pipeline.domain import Alert

log = structlog.get_logger(__name__)

NOT_THE_RECORDS_FAULT = (TransientError, ConfigurationError)

SYSTEMIC_AT = 8
"""A batch of at least this many readings that all fail alone is the store's fault, not the
records'. Below it, all failing proves little (two bad records on a trickle of traffic), and
stopping the worker there would stop it on the same records after every restart."""
"""Errors a batch is never bisected for: the worker retries or stops on them."""


@dataclass(frozen=True, slots=True)
class Poison:
    """A record the store refused on its own, and the error it refused it with."""

    reading: ProjectedReading
    error: Exception


@dataclass(slots=True)
class Isolation:
    """The outcome of bisecting a batch: its poison, and what storing the rest changed."""

    poison: list[Poison] = field(default_factory=list)
    readings_inserted: int = 0
    new_alerts: list[Alert] = field(default_factory=list)


async def isolate_poison(
    store: SensorStore, group_id: str, readings: Sequence[ProjectedReading], error: Exception
) -> Isolation:
    """Store every reading of a batch that failed with `error` except those that fail on
    their own, and return those. Raises `error` when the failure is not the records' fault."""
    try:
        await store.apply(_batch(group_id, ()))
    except NOT_THE_RECORDS_FAULT:
        raise
    except Exception:  # noqa: BLE001 - any failure of an empty transaction is the store's
        raise error from None  # even an empty transaction fails: the store is the problem
    isolation = Isolation()
    await _bisect(store, group_id, list(readings), isolation)
    if len(readings) >= SYSTEMIC_AT and len(isolation.poison) == len(readings):
        raise error  # every record fails alike: not something in the records
    for item in isolation.poison:
        log.warning(
            "record refused by the store; dead-lettered",
            sensor_id=item.reading.reading.sensor_id,
            topic=item.reading.source.topic,
            partition=item.reading.source.partition,
            offset=item.reading.offset,
            error=str(item.error),
        )
    return isolation


async def _bisect(
    store: SensorStore, group_id: str, readings: list[ProjectedReading], into: Isolation
) -> None:
    if not readings:
        return
    try:
        applied = await store.apply(_batch(group_id, readings))
    except NOT_THE_RECORDS_FAULT:
        raise
    except Exception as error:  # noqa: BLE001 - whatever a record triggers
        if len(readings) == 1:
            into.poison.append(Poison(readings[0], error))
            return
        middle = len(readings) // 2
        await _bisect(store, group_id, readings[:middle], into)
        await _bisect(store, group_id, readings[middle:], into)
        return
    into.readings_inserted += applied.readings_inserted
    into.new_alerts.extend(applied.new_alerts)


def _batch(group_id: str, readings: Sequence[ProjectedReading]) -> SensorBatch:
    # No offsets and no dead letters: only the rows. The batch's own transaction stores the
    # offsets once every record is either stored or dead-lettered.
    return SensorBatch(group_id=group_id, readings=readings, next_offsets={})
