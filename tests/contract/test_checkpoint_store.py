"""The CheckpointStore contract, run against the in-memory store, SQLite and real PostgreSQL,
each with the sensor job's sinks bound (and one that fails on purpose).

`CheckpointStoreContract` states the behaviour; each subclass only says how to build the
store and where to read back what it wrote (the sensor projection's queries, the dead
letters). The PostgreSQL store runs in a throwaway database migrated by Alembic.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore, Undo
from pipeline.adapters.memory.dead_letters import InMemoryDeadLetterStore
from pipeline.adapters.memory.sensor_sinks import memory_sensor_sinks
from pipeline.adapters.memory.sensor_store import InMemorySensorStore
from pipeline.adapters.memory.sensor_tables import SensorTables
from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.adapters.sql.checkpoint import sql_checkpoint_store
from pipeline.adapters.sql.dead_letters import SqlDeadLetterStore
from pipeline.adapters.sql.migrate import upgrade
from pipeline.adapters.sql.postgres_checkpoint import PostgresCheckpointStore
from pipeline.adapters.sql.postgres_sinks import postgres_sensor_sinks
from pipeline.adapters.sql.sqlite_sinks import sqlite_sensor_sinks
from pipeline.adapters.sql.tables import metadata, reading_aggregates_1m
from pipeline.application.errors import ConfigurationError, StoreRejected, StoreUnavailable
from pipeline.application.ports import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterStore,
    Record,
    SensorStore,
    TopicPartition,
)
from pipeline.application.ports.checkpoint import (
    CheckpointBatch,
    CheckpointStore,
    Committed,
    SinkResult,
    SinkRows,
)
from pipeline.domain.alerts import Alert, AlertKind, Severity, alert_id_for
from pipeline.domain.sensor_columns import ReadingLike, row_of
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate
from pipeline.streams.state import StateChange, dumps, loads
from tests.databases import module_database

TOPIC = "sensor-readings"
P0 = TopicPartition(TOPIC, 0)
P1 = TopicPartition(TOPIC, 1)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""The start of a one-minute window."""
WINDOW_STEP = "window-1m"


# ---------------------------------------------------------------------- builders


def reading(sensor: str = "temp-0001", at: datetime = T0, value: float = 21.5) -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=at,
        location="site-01/floor-1",
        battery_level=80.0,
        signal_strength=-60.0,
    )


def alert_on(r: Reading) -> Alert:
    return Alert(
        alert_id=alert_id_for(r.sensor_id, r.timestamp, AlertKind.THRESHOLD_HIGH),
        source=r.sensor_id,
        kind=AlertKind.THRESHOLD_HIGH,
        severity=Severity.WARNING,
        message=f"temperature {r.value:g} above threshold on {r.sensor_id}",
        timestamp=r.timestamp,
        sensor_type=r.sensor_type,
        value=r.value,
        threshold=45.0,
    )


def window(
    sensor: str = "temp-0001", start: datetime = T0, count: int = 2, mean: float = 21.0
) -> WindowAggregate:
    return WindowAggregate(
        sensor_id=sensor,
        sensor_type="temperature",
        window_start=start,
        window_end=start + timedelta(minutes=1),
        count=count,
        min=mean - 1.0,
        max=mean + 1.0,
        mean=mean,
        stddev=1.0,
    )


def origin(tp: TopicPartition, offset: int) -> Record:
    return Record(
        topic=tp.topic,
        partition=tp.partition,
        offset=offset,
        key=None,
        value=None,
        timestamp_ms=0,
    )


def readings_from(tp: TopicPartition, first: int, readings: Sequence[ReadingLike]) -> SinkRows:
    """The readings sink's rows, read from `tp` at consecutive offsets from `first`."""
    return SinkRows(
        sink="readings",
        rows=list(readings),
        parts=[tp.partition] * len(readings),
        origins=[origin(tp, first + i) for i in range(len(readings))],
    )


def results(sink: str, rows: Sequence[object], part: int = 0) -> SinkRows:
    """Rows of `sink` computed in task `part` with no record of their own (window results)."""
    return SinkRows(
        sink=sink, rows=list(rows), parts=[part] * len(rows), origins=[None] * len(rows)
    )


def put(key: object, value: object, part: int = 0, step: str = WINDOW_STEP) -> StateChange:
    return StateChange(step, part, dumps(key), dumps(value))


def delete(key: object, part: int = 0, step: str = WINDOW_STEP) -> StateChange:
    return StateChange(step, part, dumps(key), None)


def letter(offset: int, tp: TopicPartition = P0, message: str = "value out of range") -> DeadLetter:
    return DeadLetter(
        topic=tp.topic,
        partition=tp.partition,
        offset=offset,
        key=b"temp-0001",
        value=b"\x00\x01",
        timestamp_ms=1_700_000_000_000,
        error_class="reading_out_of_range",
        message=message,
        stack_trace=None,
        attempts=1,
        first_failed_at=T0,
        last_failed_at=T0,
        worker_id="worker-1",
        group_id="sensors",
    )


def batch(
    spans: dict[TopicPartition, tuple[int, int]],
    *writes: SinkRows,
    state: Sequence[StateChange] = (),
    dead_letters: Sequence[DeadLetter] = (),
    group: str = "sensors",
) -> CheckpointBatch:
    """A batch that read [start, next) of each partition in `spans`."""
    return CheckpointBatch(
        group_id=group,
        start_offsets={tp: start for tp, (start, _) in spans.items()},
        next_offsets={tp: end for tp, (_, end) in spans.items()},
        writes=list(writes),
        state=list(state),
        dead_letters=list(dead_letters),
    )


def decoded(state: dict[int, dict[str, list[tuple[bytes, bytes]]]]) -> dict[int, dict[str, Any]]:
    return {
        part: {step: {loads(k): loads(v) for k, v in pairs} for step, pairs in steps.items()}
        for part, steps in state.items()
    }


class SinkFailure(RuntimeError):
    """What the failing sink raises."""


class FailingSink:
    """A PostgreSQL or SQLite sink that fails mid-commit, after the sinks before it wrote."""

    async def write(self, conn: Any, rows: Sequence[Any], origins: Sequence[Any]) -> SinkResult:
        raise SinkFailure("the disk under this sink is full")


class FailingMemorySink:
    """The in-memory store's sink that fails mid-commit."""

    def write(self, rows: Sequence[Any], origins: Sequence[Any], undo: Undo) -> SinkResult:
        raise SinkFailure("the disk under this sink is full")


@dataclass
class World:
    """A checkpoint store and where to read back what it wrote."""

    store: CheckpointStore
    projection: SensorStore
    dead_letters: DeadLetterStore


# ---------------------------------------------------------------------- the contract


class CheckpointStoreContract:
    """What every CheckpointStore does. Subclasses provide the `world` fixture."""

    @pytest.fixture
    def world(self) -> World:
        raise NotImplementedError

    async def _dead_letters(self, world: World) -> list[tuple[str, int, int, str]]:
        found = await world.dead_letters.find_dead_letters(DeadLetterFilter())
        return [(x.topic, x.partition, x.offset, x.message) for x in found]

    # ------------------------------------------------------------- one batch, all or nothing

    async def test_a_batch_commits_its_rows_state_dead_letters_and_offsets_together(
        self, world: World
    ) -> None:
        hot = reading(at=T0 + timedelta(seconds=1), value=50.0)
        readings = [reading(), hot]

        committed = await world.store.commit(
            batch(
                {P0: (0, 3)},
                readings_from(P0, 0, readings),
                results("aggregates_1m", [window()]),
                results("alerts", [alert_on(hot)]),
                state=[put("temp-0001", 2)],
                dead_letters=[letter(2)],
            )
        )

        assert committed == Committed(
            written={"readings": 2, "aggregates_1m": 1, "alerts": 1},
            events=(alert_on(hot),),
            fenced={},
        )
        assert await world.projection.latest_readings(limit=5) == [hot, readings[0]]
        assert await world.projection.aggregates("temp-0001", T0, T0 + timedelta(hours=1)) == [
            window()
        ]
        assert await world.projection.unpublished_alerts(10) == [alert_on(hot)]
        assert decoded(await world.store.load_state("sensors", [0])) == {
            0: {WINDOW_STEP: {"temp-0001": 2}}
        }
        assert await self._dead_letters(world) == [(TOPIC, 0, 2, "value out of range")]
        assert await world.store.stored_offsets("sensors", [P0]) == {P0: 3}

    async def test_a_sink_failing_mid_commit_leaves_nothing_of_the_batch(
        self, world: World
    ) -> None:
        failing = batch(
            {P0: (0, 3)},
            readings_from(P0, 0, [reading(), reading(at=T0 + timedelta(seconds=1))]),
            results("alerts", [alert_on(reading())]),
            results("aggregates_1m", [window()]),
            results("failing", ["anything"]),
            state=[put("temp-0001", 2)],
            dead_letters=[letter(2)],
        )

        with pytest.raises(SinkFailure):
            await world.store.commit(failing)

        assert await world.projection.count_readings() == 0
        assert not await world.projection.has_sensor("temp-0001")
        assert await world.projection.aggregates("temp-0001", T0, T0 + timedelta(hours=1)) == []
        assert await world.projection.unpublished_alerts(10) == []
        assert await world.store.load_state("sensors", [0]) == {0: {}}
        assert await self._dead_letters(world) == []
        assert await world.store.stored_offsets("sensors", [P0]) == {}

    async def test_a_batch_whose_commit_failed_commits_whole_when_tried_again(
        self, world: World
    ) -> None:
        readings = [reading(), reading(at=T0 + timedelta(seconds=1))]
        spans = {P0: (0, 2)}
        writes = (
            readings_from(P0, 0, readings),
            results("aggregates_1m", [window()]),
        )
        with pytest.raises(SinkFailure):
            await world.store.commit(
                batch(spans, *writes, results("failing", ["x"]), state=[put("k", 1)])
            )

        committed = await world.store.commit(batch(spans, *writes, state=[put("k", 1)]))

        assert committed.written == {"readings": 2, "aggregates_1m": 1}
        assert await world.projection.count_readings() == 2
        assert decoded(await world.store.load_state("sensors", [0])) == {0: {WINDOW_STEP: {"k": 1}}}

    async def test_a_batch_writing_to_an_unbound_sink_is_refused_before_anything_is_written(
        self, world: World
    ) -> None:
        unknown = batch(
            {P0: (0, 1)}, readings_from(P0, 0, [reading()]), results("orders_5m", ["row"])
        )

        with pytest.raises(ConfigurationError, match="orders_5m"):
            await world.store.commit(unknown)

        assert await world.projection.count_readings() == 0
        assert await world.store.stored_offsets("sensors", [P0]) == {}

    async def test_sink_rows_without_a_part_and_origin_each_are_refused(self, world: World) -> None:
        lopsided = SinkRows(sink="readings", rows=[reading(), reading()], parts=[0], origins=[])

        with pytest.raises(ValueError, match="each row needs its part and origin"):
            await world.store.commit(
                CheckpointBatch(
                    group_id="sensors",
                    start_offsets={P0: 0},
                    next_offsets={P0: 2},
                    writes=[lopsided],
                )
            )

        assert await world.projection.count_readings() == 0
        assert await world.store.stored_offsets("sensors", [P0]) == {}

    # ------------------------------------------------------------------------ fencing

    async def test_a_partition_stored_past_the_batch_start_is_fenced_and_the_others_commit(
        self, world: World
    ) -> None:
        await world.store.commit(batch({P1: (0, 10)}, state=[put("temp-0002", 10, part=1)]))
        early, late = reading("temp-0001"), reading("temp-0002")

        committed = await world.store.commit(
            batch(
                {P0: (0, 4), P1: (5, 9)},
                readings_from(P0, 0, [early]),
                readings_from(P1, 5, [late]),
                results("aggregates_1m", [window("temp-0002")], part=1),
                results("alerts", [alert_on(late)], part=1),
                state=[put("temp-0001", 1, part=0), put("temp-0002", 99, part=1)],
                dead_letters=[letter(3, P0), letter(6, P1)],
            )
        )

        assert committed.fenced == {P1: 10}
        assert committed.written == {"readings": 1, "aggregates_1m": 0, "alerts": 0}
        assert committed.events == ()
        assert await world.projection.latest_readings(limit=5) == [early]
        assert await world.projection.aggregates("temp-0002", T0, T0 + timedelta(hours=1)) == []
        assert await world.projection.unpublished_alerts(10) == []
        assert decoded(await world.store.load_state("sensors", [0, 1])) == {
            0: {WINDOW_STEP: {"temp-0001": 1}},
            1: {WINDOW_STEP: {"temp-0002": 10}},
        }
        assert [x[:3] for x in await self._dead_letters(world)] == [(TOPIC, 0, 3)]
        assert await world.store.stored_offsets("sensors", [P0, P1]) == {P0: 4, P1: 10}

    async def test_a_fenced_partition_number_fences_that_partition_of_every_source_topic(
        self, world: World
    ) -> None:
        # A join reads two co-partitioned topics: their partitions 1 are one task, one state.
        profiles = TopicPartition("profiles", 1)
        await world.store.commit(batch({P1: (0, 8), profiles: (0, 3)}))

        committed = await world.store.commit(
            batch(
                {P1: (8, 12), profiles: (2, 4)},
                readings_from(P1, 8, [reading()]),
                state=[put("temp-0001", "joined", part=1)],
            )
        )

        assert committed.fenced == {P1: 8, profiles: 3}
        assert committed.written == {"readings": 0}
        assert await world.projection.count_readings() == 0
        assert await world.store.load_state("sensors", [1]) == {1: {}}
        assert await world.store.stored_offsets("sensors", [P1, profiles]) == {
            P1: 8,
            profiles: 3,
        }

    async def test_a_fenced_task_leaves_no_offset_for_a_source_partition_never_stored(
        self, world: World
    ) -> None:
        profiles = TopicPartition("profiles", 1)
        await world.store.commit(batch({P1: (0, 8)}))

        committed = await world.store.commit(batch({P1: (4, 12), profiles: (2, 4)}))

        assert committed.fenced == {P1: 8, profiles: 2}
        assert await world.store.stored_offsets("sensors", [P1, profiles]) == {P1: 8}

    async def test_a_batch_repeated_at_the_same_start_after_success_is_fenced_whole(
        self, world: World
    ) -> None:
        hot = reading(value=50.0)
        first = batch(
            {P0: (0, 5)},
            readings_from(P0, 0, [hot]),
            results("aggregates_1m", [window(count=1)]),
            results("alerts", [alert_on(hot)]),
            state=[put("temp-0001", 1)],
        )
        await world.store.commit(first)
        # The same records handled again (a zombie's batch, or a retry after a lost
        # acknowledgement) may compute other values: none of them may land.
        repeat = batch(
            {P0: (0, 7)},
            readings_from(P0, 0, [hot, reading(at=T0 + timedelta(seconds=5))]),
            results("aggregates_1m", [window(count=2, mean=30.0)]),
            results("alerts", [alert_on(hot)]),
            state=[put("temp-0001", 2)],
        )

        committed = await world.store.commit(repeat)

        assert committed == Committed(
            written={"readings": 0, "aggregates_1m": 0, "alerts": 0}, events=(), fenced={P0: 5}
        )
        assert await world.projection.count_readings() == 1
        assert await world.projection.aggregates("temp-0001", T0, T0 + timedelta(hours=1)) == [
            window(count=1)
        ]
        assert decoded(await world.store.load_state("sensors", [0])) == {
            0: {WINDOW_STEP: {"temp-0001": 1}}
        }
        assert await world.store.stored_offsets("sensors", [P0]) == {P0: 5}

    async def test_the_same_first_batch_committed_twice_at_once_lands_once(
        self, world: World
    ) -> None:
        # Two owners of a partition the group never stored: the one that commits second
        # must find itself fenced, not overwrite the first one's state.
        def attempt(value: str) -> CheckpointBatch:
            return batch({P0: (0, 4)}, readings_from(P0, 0, [reading()]), state=[put("k", value)])

        outcomes = await asyncio.gather(
            world.store.commit(attempt("a")), world.store.commit(attempt("b"))
        )

        fenced = [c.fenced for c in outcomes]
        assert sorted(fenced, key=len) == [{}, {P0: 4}]
        winner = "a" if outcomes[0].fenced == {} else "b"
        assert decoded(await world.store.load_state("sensors", [0])) == {
            0: {WINDOW_STEP: {"k": winner}}
        }
        assert await world.projection.count_readings() == 1

    # -------------------------------------------------------------------------- state

    async def test_state_round_trips_upserts_and_deletes_per_partition_and_step(
        self, world: World
    ) -> None:
        await world.store.commit(
            batch(
                {P0: (0, 1), P1: (0, 1)},
                state=[
                    put("temp-0001", {"count": 1}),
                    put("temp-0002", {"count": 2}),
                    put(("temp-0003", 60_000), [1.5, 2.5], part=1),
                    put("__p1__", 1_234, part=1, step="__stream_time__"),
                ],
            )
        )

        await world.store.commit(
            batch(
                {P0: (1, 2)},
                state=[put("temp-0001", {"count": 3}), delete("temp-0002"), delete("never-there")],
            )
        )

        assert decoded(await world.store.load_state("sensors", [0, 1, 2])) == {
            0: {WINDOW_STEP: {"temp-0001": {"count": 3}}},
            1: {
                WINDOW_STEP: {("temp-0003", 60_000): [1.5, 2.5]},
                "__stream_time__": {"__p1__": 1_234},
            },
            2: {},
        }

    async def test_state_keys_and_values_are_kept_byte_for_byte(self, world: World) -> None:
        raw = StateChange(WINDOW_STEP, 0, b"\x00key\xff", bytes(range(256)) * 40)

        await world.store.commit(batch({P0: (0, 1)}, state=[raw]))

        assert await world.store.load_state("sensors", [0]) == {
            0: {WINDOW_STEP: [(b"\x00key\xff", bytes(range(256)) * 40)]}
        }

    async def test_the_last_change_of_a_key_within_a_batch_wins(self, world: World) -> None:
        await world.store.commit(
            batch(
                {P0: (0, 2)},
                state=[
                    put("a", 1),
                    put("b", 1),
                    put("a", 2),
                    delete("b"),
                    put("c", 1),
                    put("c", 3),
                ],
            )
        )

        assert decoded(await world.store.load_state("sensors", [0])) == {
            0: {WINDOW_STEP: {"a": 2, "c": 3}}
        }

    async def test_state_and_offsets_belong_to_their_group(self, world: World) -> None:
        await world.store.commit(batch({P0: (0, 3)}, state=[put("k", "mine")], group="one"))
        await world.store.commit(batch({P0: (0, 5)}, state=[put("k", "theirs")], group="two"))

        assert decoded(await world.store.load_state("one", [0])) == {
            0: {WINDOW_STEP: {"k": "mine"}}
        }
        assert await world.store.stored_offsets("one", [P0, P1]) == {P0: 3}
        assert await world.store.stored_offsets("nobody", [P0]) == {}
        assert await world.store.load_state("one", []) == {}

    # --------------------------------------------------------------- idempotent sinks

    async def test_dead_letters_are_stored_once_keeping_the_first(self, world: World) -> None:
        await world.store.commit(batch({P0: (0, 2)}, dead_letters=[letter(1, message="first")]))

        await world.store.commit(batch({P0: (2, 3)}, dead_letters=[letter(1, message="again")]))

        assert await self._dead_letters(world) == [(TOPIC, 0, 1, "first")]

    async def test_readings_already_stored_are_not_inserted_again(self, world: World) -> None:
        readings = [reading(at=T0 + timedelta(seconds=i)) for i in range(3)]
        await world.store.commit(batch({P0: (0, 3)}, readings_from(P0, 0, readings)))

        # The producer sent them twice: same readings at later offsets.
        again = readings_from(P0, 3, [*readings, reading(at=T0 + timedelta(seconds=9))])
        committed = await world.store.commit(batch({P0: (3, 7)}, again))

        assert committed.written == {"readings": 1}
        assert await world.projection.count_readings() == 4

    async def test_a_reading_twice_in_one_batch_is_stored_once(self, world: World) -> None:
        readings = [reading(at=T0 + timedelta(seconds=i)) for i in range(3)]
        twice = readings_from(P0, 0, [*readings, readings[1]])

        committed = await world.store.commit(batch({P0: (0, 4)}, twice))

        assert committed.written == {"readings": 3}
        assert await world.projection.count_readings() == 3

    async def test_after_readings_already_stored_the_next_batches_store_all_of_theirs(
        self, world: World
    ) -> None:
        first = [reading(at=T0 + timedelta(seconds=i)) for i in range(3)]
        await world.store.commit(batch({P0: (0, 3)}, readings_from(P0, 0, first)))
        await world.store.commit(batch({P0: (3, 4)}, readings_from(P0, 3, first[:1])))

        for n in range(3):
            fresh = [reading(at=T0 + timedelta(minutes=n + 1, seconds=i)) for i in range(2)]
            committed = await world.store.commit(
                batch({P0: (4 + 2 * n, 6 + 2 * n)}, readings_from(P0, 4 + 2 * n, fresh))
            )
            assert committed.written == {"readings": 2}
        assert await world.projection.count_readings() == 9

    async def test_readings_written_as_rows_are_stored_as_the_readings_they_are(
        self, world: World
    ) -> None:
        readings = [reading(at=T0 + timedelta(seconds=i), value=20.0 + i) for i in range(3)]
        rows = [row_of(r) for r in readings]

        committed = await world.store.commit(batch({P0: (0, 3)}, readings_from(P0, 0, rows)))

        assert committed.written == {"readings": 3}
        assert await world.projection.latest_readings(limit=5) == readings[::-1]

    async def test_an_aggregate_row_replaces_what_its_window_held(self, world: World) -> None:
        other = window(start=T0 + timedelta(minutes=1))
        await world.store.commit(batch({P0: (0, 1)}, results("aggregates_1m", [window(), other])))

        committed = await world.store.commit(
            batch({P0: (1, 2)}, results("aggregates_1m", [window(count=5, mean=30.0)]))
        )

        assert committed.written == {"aggregates_1m": 1}
        assert await world.projection.aggregates("temp-0001", T0, T0 + timedelta(hours=1)) == [
            window(count=5, mean=30.0),
            other,
        ]

    async def test_an_aggregate_row_with_fewer_readings_never_replaces_the_stored_one(
        self, world: World
    ) -> None:
        # A replay catching up from a window's start, or a member that lost its partition,
        # sends a partial view of the window: it must not take the row back.
        await world.store.commit(batch({P0: (0, 1)}, results("aggregates_1m", [window(count=5)])))

        committed = await world.store.commit(
            batch({P0: (1, 2)}, results("aggregates_1m", [window(count=2, mean=99.0)]))
        )

        assert committed.written == {"aggregates_1m": 0}
        assert await world.projection.aggregates("temp-0001", T0, T0 + timedelta(minutes=1)) == [
            window(count=5)
        ]

    async def test_an_aggregate_stored_unchanged_counts_zero(self, world: World) -> None:
        await world.store.commit(batch({P0: (0, 1)}, results("aggregates_1m", [window()])))

        committed = await world.store.commit(
            batch({P0: (1, 2)}, results("aggregates_1m", [window()]))
        )

        assert committed.written == {"aggregates_1m": 0}

    async def test_a_window_updated_twice_in_one_batch_keeps_its_last_value(
        self, world: World
    ) -> None:
        updates = [window(count=1), window(count=2), window(count=3, mean=25.0)]

        await world.store.commit(batch({P0: (0, 3)}, results("aggregates_1m", updates)))

        assert await world.projection.aggregates("temp-0001", T0, T0 + timedelta(hours=1)) == [
            window(count=3, mean=25.0)
        ]

    async def test_alert_events_are_the_alerts_stored_for_the_first_time(
        self, world: World
    ) -> None:
        old = alert_on(reading(value=50.0))
        new = alert_on(reading(at=T0 + timedelta(seconds=1), value=51.0))
        await world.store.commit(batch({P0: (0, 1)}, results("alerts", [old])))

        committed = await world.store.commit(batch({P0: (1, 3)}, results("alerts", [old, new])))

        assert committed.events == (new,)
        assert committed.written == {"alerts": 1}
        assert [a.alert_id for a in await world.projection.alerts()] == [new.alert_id, old.alert_id]

    async def test_offsets_of_partitions_without_rows_move_and_unknown_ones_are_absent(
        self, world: World
    ) -> None:
        committed = await world.store.commit(batch({P0: (0, 7)}))

        assert committed == Committed()
        assert await world.store.stored_offsets("sensors", [P0, P1]) == {P0: 7}

    async def test_a_reachable_store_answers_ping(self, world: World) -> None:
        await world.store.ping()


# ---------------------------------------------------------------------- the adapters


class TestInMemoryCheckpointStore(CheckpointStoreContract):
    @pytest.fixture
    def world(self) -> World:
        tables = SensorTables()
        dead_letters = InMemoryDeadLetterStore()
        sinks = {**memory_sensor_sinks(tables), "failing": FailingMemorySink()}
        return World(
            store=InMemoryCheckpointStore(sinks, dead_letters=dead_letters),
            projection=InMemorySensorStore(tables),
            dead_letters=dead_letters,
        )


class SqlCheckpointStoreContract(CheckpointStoreContract):
    """Extra behaviour of the SQL stores."""

    async def test_a_failure_in_the_last_statement_takes_back_the_rows_and_state_before_it(
        self, world: World
    ) -> None:
        # An offset beyond BIGINT fails while storing offsets, the commit's last write.
        overflowing = CheckpointBatch(
            group_id="sensors",
            start_offsets={P0: 0},
            next_offsets={P0: 2**63},
            writes=[readings_from(P0, 0, [reading()])],
            state=[put("temp-0001", 1)],
            dead_letters=[letter(0)],
        )

        # PostgreSQL refuses the value (StoreRejected); sqlite3 cannot even bind it.
        with pytest.raises((StoreRejected, OverflowError)):
            await world.store.commit(overflowing)

        assert await world.projection.count_readings() == 0
        assert await world.store.load_state("sensors", [0]) == {0: {}}
        assert await self._dead_letters(world) == []
        assert await world.store.stored_offsets("sensors", [P0]) == {}

    async def test_an_aggregate_row_keeps_m2_for_merging_readers(
        self, world: World, engine: Any
    ) -> None:
        await world.store.commit(batch({P0: (0, 1)}, results("aggregates_1m", [window(count=4)])))

        async with engine.connect() as conn:
            m2 = await conn.scalar(sa.select(reading_aggregates_1m.c.m2))

        assert m2 == pytest.approx(1.0 * 1.0 * 4)


def _world(engine: Any) -> World:
    store = sql_checkpoint_store(
        engine,
        postgres={**postgres_sensor_sinks(), "failing": FailingSink()},
        sqlite={**sqlite_sensor_sinks(), "failing": FailingSink()},
    )
    return World(
        store=store, projection=SqlSensorStore(engine), dead_letters=SqlDeadLetterStore(engine)
    )


FOLD = 8
"""The folding tests' `fold_at`: a few batches, not the production value's hundreds."""
FOLD_ENTRIES = 64


def _folding_store(
    engine: Any, *, fold_at: int = 1_000, fold_entries: int = 100_000
) -> PostgresCheckpointStore:
    return PostgresCheckpointStore(
        engine, postgres_sensor_sinks(), fold_at=fold_at, fold_entries=fold_entries
    )


async def _log_and_folded(engine: Any) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition of the group: its log's rows, and the keys of its folded state."""
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                sa.text(
                    'SELECT "partition", count(*) FROM stream_state_log '
                    "WHERE group_id = 'sensors' GROUP BY 1"
                )
            )
        ).all()
        folded = (
            await conn.execute(
                sa.text(
                    'SELECT "partition", count(*) FROM stream_state '
                    "WHERE group_id = 'sensors' GROUP BY 1"
                )
            )
        ).all()
    return dict(logged), dict(folded)


@asynccontextmanager
async def _stream_state_locked(url: str) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """`stream_state` locked against writes, on a connection of its own, for the block;
    yields an async function answering how many folds wait for the lock (once one waits)."""
    locker = create_engine(url, pool_size=2)

    async def waiting_folds() -> int:
        async with locker.connect() as conn:
            for _ in range(200):
                waiting = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%DELETE FROM stream_state_log%'"
                    )
                )
                if waiting:
                    return int(waiting)
                await asyncio.sleep(0.05)
        return 0

    try:
        async with locker.connect() as conn, conn.begin():
            await conn.execute(sa.text("LOCK TABLE stream_state IN EXCLUSIVE MODE"))
            yield waiting_folds
    finally:
        await locker.dispose()


class TestSqliteCheckpointStore(SqlCheckpointStoreContract):
    @pytest.fixture
    async def engine(self, tmp_path: Path) -> AsyncIterator[Any]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'checkpoint.db'}"
        upgrade(url)
        engine = create_engine(url)
        yield engine
        await engine.dispose()

    @pytest.fixture
    def world(self, engine: Any) -> World:
        return _world(engine)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """One throwaway database for this module, created and migrated by Alembic."""
    yield from module_database("contract_checkpoint")


@pytest.mark.integration
class TestPostgresCheckpointStore(SqlCheckpointStoreContract):
    @pytest.fixture
    async def engine(self, postgres_url: str) -> AsyncIterator[Any]:
        engine = create_engine(postgres_url, pool_size=2)
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {', '.join(metadata.tables)}"))
        yield engine
        await engine.dispose()

    @pytest.fixture
    def world(self, engine: Any) -> World:
        return _world(engine)

    async def test_tables_rewritten_every_batch_leave_room_on_their_pages(
        self, engine: Any
    ) -> None:
        async with engine.connect() as conn:
            options = dict(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT relname, reloptions FROM pg_class WHERE relname IN "
                            "('stream_state', 'reading_aggregates_1m')"
                        )
                    )
                ).all()
            )

        assert options == {
            "stream_state": ["fillfactor=70"],
            "reading_aggregates_1m": ["fillfactor=70"],
        }

    async def test_state_changes_are_logged_and_folded_every_fold_at_rows_restoring_alike(
        self, engine: Any
    ) -> None:
        # Random puts and deletes over a few keys of two partitions, batch after batch: a
        # store made afresh (a restarted worker) restores what a model of the changes holds,
        # whether the log was folded into `stream_state` just before, many batches ago, or
        # is being folded right then.
        rng = random.Random(5)
        store = _folding_store(engine, fold_at=FOLD)
        model: dict[int, dict[int, float]] = {0: {}, 1: {}}
        next_offset = {P0: 0, P1: 0}
        batches = 3 * FOLD + 5
        for n in range(batches):
            changes = []
            for part in (0, 1):
                for key in rng.sample(range(12), 4):
                    if rng.random() < 0.3:
                        changes.append(delete(key, part=part))
                        model[part].pop(key, None)
                    else:
                        value = rng.random()
                        changes.append(put(key, value, part=part))
                        model[part][key] = value
            spans = {tp: (next_offset[tp], next_offset[tp] + 1) for tp in (P0, P1)}
            await store.commit(batch(spans, state=changes))
            next_offset = {tp: end for tp, (_, end) in spans.items()}
            if n % 3 == 0 or n == batches - 1:
                restarted = _world(engine).store
                assert decoded(await restarted.load_state("sensors", [0, 1])) == {
                    part: {WINDOW_STEP: entries} if entries else {}
                    for part, entries in model.items()
                }
        await store.close()

        logged, folded = await _log_and_folded(engine)
        # Each partition appended a row per batch (3 * FOLD + 5); folded one partition at a
        # time, its log holds fewer than FOLD rows, or fewer than twice that when it waited
        # for the other's fold (none when its last fold came last).
        assert set(logged) <= {0, 1}
        assert all(rows < 2 * FOLD for rows in logged.values())
        # And the folds wrote the folded state of both partitions.
        assert sorted(folded) == [0, 1]

    async def test_partitions_due_together_are_folded_one_after_the_other_without_a_commit(
        self, engine: Any
    ) -> None:
        store = _folding_store(engine, fold_at=FOLD)
        for n in range(FOLD):
            spans = {tp: (n, n + 1) for tp in (P0, P1)}
            await store.commit(batch(spans, state=[put(n, n, part=0), put(n, n, part=1)]))

        # Both are due after the last commit; no other commit comes.
        for _ in range(200):
            if await _log_and_folded(engine) == ({}, {0: FOLD, 1: FOLD}):
                break
            await asyncio.sleep(0.05)
        await store.close()

        assert await _log_and_folded(engine) == ({}, {0: FOLD, 1: FOLD})

    async def test_a_log_holding_fold_entries_changes_is_folded_however_few_its_rows(
        self, engine: Any
    ) -> None:
        # When each batch changes many keys, a fold's work stays bounded.
        store = _folding_store(engine, fold_entries=FOLD_ENTRIES)
        await store.commit(batch({P0: (0, 1)}, state=[put("small", 0)]))
        await store.commit(batch({P0: (1, 2)}, state=[put(n, n) for n in range(FOLD_ENTRIES)]))
        await store.close()

        logged, folded = await _log_and_folded(engine)
        assert (logged, folded) == ({}, {0: FOLD_ENTRIES + 1})
        restored = decoded(await _world(engine).store.load_state("sensors", [0]))
        assert restored == {0: {WINDOW_STEP: {"small": 0} | {n: n for n in range(FOLD_ENTRIES)}}}

    async def test_a_fenced_partition_neither_logs_nor_folds_its_state(self, engine: Any) -> None:
        store = _folding_store(engine, fold_at=FOLD)
        for n in range(FOLD - 1):
            await store.commit(batch({P0: (n, n + 1)}, state=[put("k", n)]))
        # A zombie's batch starting behind the stored offset: fenced whole.
        committed = await store.commit(batch({P0: (0, 1)}, state=[put("k", "zombie")]))
        await store.close()

        assert committed.fenced == {P0: FOLD - 1}
        assert decoded(await _world(engine).store.load_state("sensors", [0])) == {
            0: {WINDOW_STEP: {"k": FOLD - 2}}
        }
        assert await _log_and_folded(engine) == ({0: FOLD - 1}, {})

    async def test_commits_go_on_while_a_fold_waits_and_restores_read_the_same_state(
        self, engine: Any, postgres_url: str
    ) -> None:
        # The fold is in a transaction of its own: a fold held up (here by a lock on
        # `stream_state`) holds up no commit, and what a restore reads is the same before,
        # during and after it.
        store = _folding_store(engine, fold_at=FOLD)
        model: dict[int, int] = {}
        async with _stream_state_locked(postgres_url) as waiting_folds:
            for n in range(3 * FOLD):
                model[n % 5] = n
                await asyncio.wait_for(
                    store.commit(batch({P0: (n, n + 1)}, state=[put(n % 5, n)])), timeout=10
                )
            assert await waiting_folds() == 1
            assert decoded(await _world(engine).store.load_state("sensors", [0])) == {
                0: {WINDOW_STEP: model}
            }
        await store.close()

        logged, folded = await _log_and_folded(engine)
        assert folded == {0: 5}
        assert logged.get(0, 0) < 3 * FOLD
        assert decoded(await _world(engine).store.load_state("sensors", [0])) == {
            0: {WINDOW_STEP: model}
        }

    async def test_a_fold_that_fails_leaves_the_log_whole_and_is_tried_again(
        self, engine: Any, postgres_url: str
    ) -> None:
        store = _folding_store(engine, fold_at=FOLD)
        model: dict[int, int] = {}
        with structlog.testing.capture_logs() as logs:
            async with _stream_state_locked(postgres_url) as waiting_folds:
                for n in range(FOLD):
                    model[n % 5] = n
                    await store.commit(batch({P0: (n, n + 1)}, state=[put(n % 5, n)]))
                assert await waiting_folds() == 1
                # The fold's connection is lost while it waits.
                async with engine.connect() as conn:
                    await conn.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE query LIKE '%DELETE FROM stream_state_log%' "
                            "AND pid <> pg_backend_pid()"
                        )
                    )
                for _ in range(100):
                    if any(e["event"].startswith("folding the state log failed") for e in logs):
                        break
                    await asyncio.sleep(0.05)
            assert await _log_and_folded(engine) == ({0: FOLD}, {})
            assert decoded(await _world(engine).store.load_state("sensors", [0])) == {
                0: {WINDOW_STEP: model}
            }
            # The next commit folds it all.
            model[0] = FOLD
            await store.commit(batch({P0: (FOLD, FOLD + 1)}, state=[put(0, FOLD)]))
            await store.close()

        failed = [e for e in logs if e["event"].startswith("folding the state log failed")]
        assert [(e["log_level"], e["partition"]) for e in failed] == [("warning", 0)]
        assert await _log_and_folded(engine) == ({}, {0: 5})
        assert decoded(await _world(engine).store.load_state("sensors", [0])) == {
            0: {WINDOW_STEP: model}
        }

    async def test_a_lost_connection_fails_at_most_one_attempt_as_store_unavailable(
        self, world: World, engine: Any, postgres_url: str
    ) -> None:
        async with engine.connect() as conn:
            backend = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
        killer = create_engine(postgres_url, pool_size=1)
        try:
            async with killer.connect() as conn:
                await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        finally:
            await killer.dispose()
        first = batch({P0: (0, 1)}, readings_from(P0, 0, [reading()]), state=[put("k", 1)])

        outcomes: list[str] = []
        for _ in range(2):
            try:
                committed = await world.store.commit(first)
            except StoreUnavailable:
                outcomes.append("unavailable")
            else:
                outcomes.append(f"inserted {committed.written['readings']}")
                break

        assert outcomes in (["inserted 1"], ["unavailable", "inserted 1"])
        assert decoded(await world.store.load_state("sensors", [0])) == {0: {WINDOW_STEP: {"k": 1}}}


async def test_every_store_is_a_checkpoint_store(tmp_path: Path) -> None:
    engines = [
        create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"),
        create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"),
    ]

    stores = [
        InMemoryCheckpointStore({}),
        *(sql_checkpoint_store(e, postgres={}, sqlite={}) for e in engines),
    ]

    assert [type(s).__name__ for s in stores if isinstance(s, CheckpointStore)] == [
        "InMemoryCheckpointStore",
        "SqliteCheckpointStore",
        "PostgresCheckpointStore",
    ]
    for engine in engines:
        await engine.dispose()
