"""Writing the sensor projection in tests as the sensors job writes it: readings through the
job's engine task, its rows committed by the checkpoint store on the store's database."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import UTC, datetime

from pipeline.adapters.memory import InMemorySensorStore
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.adapters.memory.sensor_sinks import memory_sensor_sinks
from pipeline.adapters.sql import SqlSensorStore
from pipeline.adapters.sql.checkpoint import sql_checkpoint_store
from pipeline.adapters.sql.postgres_sinks import postgres_sensor_sinks
from pipeline.adapters.sql.sqlite_sinks import sqlite_sensor_sinks
from pipeline.application.ports import Record
from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore, SinkRows
from pipeline.domain.alerts import Alert
from pipeline.domain.sensors import Reading
from pipeline.jobs.sensors import SensorJobConfig, sensor_job
from pipeline.streams import Task, to_millis

TOPIC = "sensor-readings"
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
"""The validation clock: no reading of a test is in its future."""


def memory_checkpoint(store: InMemorySensorStore) -> CheckpointStore:
    """The in-memory checkpoint store writing into `store`'s tables."""
    sinks = memory_sensor_sinks(store.tables)
    return InMemoryCheckpointStore(sinks, dead_letters=store.dead_letters)


def sql_checkpoint(store: SqlSensorStore) -> CheckpointStore:
    """The checkpoint store on `store`'s engine, with the sensor job's sinks."""
    return sql_checkpoint_store(
        store.engine, postgres=postgres_sensor_sinks(), sqlite=sqlite_sensor_sinks()
    )


_CHECKPOINTS: weakref.WeakKeyDictionary[object, CheckpointStore] = weakref.WeakKeyDictionary()


def checkpoint_for(store: object) -> CheckpointStore:
    """The checkpoint store matching a memory or SQL sensor store (one per store: the
    in-memory one keeps the offsets and state itself)."""
    found = _CHECKPOINTS.get(store)
    if found is None:
        if isinstance(store, InMemorySensorStore):
            found = memory_checkpoint(store)
        else:
            assert isinstance(store, SqlSensorStore)
            found = sql_checkpoint(store)
        _CHECKPOINTS[store] = found
    return found


class Writes:
    """The sensor projection written as the sensors job writes it: readings run through the
    job's engine task (one task for the test, so windows span calls like batches), its rows
    committed by the checkpoint store next to `store`; alerts given explicitly are committed
    with them (the job's threshold alerts are off, so tests choose theirs)."""

    def __init__(self, checkpoint: CheckpointStore, group: str = "sensors") -> None:
        self._group = group
        self._checkpoint = checkpoint
        # Each call upserts the windows it changed (the store's contract is checked call by
        # call), not once a second.
        job = sensor_job(SensorJobConfig(topic=TOPIC, thresholds={}, aggregates_every=None))
        self._task = Task(job.plan())
        self._task.assign(0, {}, to_millis(FAR_FUTURE))
        self._offset = 0

    async def readings(self, readings: Sequence[Reading], alerts: Sequence[Alert] = ()) -> None:
        """Run `readings` through the job as one batch and commit what it produced."""
        inputs = []
        for r in readings:
            origin = Record(
                topic=TOPIC, partition=0, offset=self._offset, key=None, value=b"",
                timestamp_ms=to_millis(r.timestamp),
            )  # fmt: skip
            inputs.append((TOPIC, 0, r, origin))
            self._offset += 1
        out = self._task.process(inputs, to_millis(FAR_FUTURE))
        assert not out.rejected, out.rejected
        writes = [
            SinkRows(
                sink=sink,
                rows=[i.value for i in items],
                parts=[0] * len(items),
                origins=[i.origin if isinstance(i.origin, Record) else None for i in items],
            )
            for sink, items in out.sinks.items()
        ]
        if alerts:
            writes.append(
                SinkRows(sink="alerts", rows=list(alerts), parts=[0] * len(alerts),
                         origins=[None] * len(alerts))
            )  # fmt: skip
        await self._checkpoint.commit(
            CheckpointBatch(group_id=self._group, start_offsets={}, next_offsets={}, writes=writes)
        )


_WRITES: weakref.WeakKeyDictionary[object, Writes] = weakref.WeakKeyDictionary()


def writes_for(store: object) -> Writes:
    """One `Writes` per store for the whole test, so that a window spans its calls as it
    spans batches."""
    found = _WRITES.get(store)
    if found is None:
        found = _WRITES[store] = Writes(checkpoint_for(store))
    return found
