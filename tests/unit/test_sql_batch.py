"""Working out what a batch asks of the database before any SQL is sent."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.adapters.sql.batch import minute_of, partitions_of, plan_batch
from pipeline.adapters.sql.migrate import upgrade
from pipeline.application.ports import ProjectedReading, SensorBatch, TopicPartition
from pipeline.domain.alerts import Alert, AlertKind, Severity, alert_id_for
from pipeline.domain.sensors import Reading
from pipeline.domain.time import window_start
from pipeline.domain.windows import ONE_MINUTE

P0 = TopicPartition("readings", 0)
P1 = TopicPartition("readings", 1)
T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def projected(
    offset: int, sensor: str, at: datetime, source: TopicPartition = P0
) -> ProjectedReading:
    r = Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=50.0,
        unit="celsius",
        timestamp=at,
        location="lab",
    )
    alert = Alert(
        alert_id=alert_id_for(sensor, at, AlertKind.THRESHOLD_HIGH),
        source=sensor,
        kind=AlertKind.THRESHOLD_HIGH,
        severity=Severity.WARNING,
        message="hot",
        timestamp=at,
    )
    return ProjectedReading(source=source, offset=offset, reading=r, alerts=(alert,))


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_minute_of_is_the_domain_one_minute_window(moment: datetime) -> None:
    assert minute_of(moment) == window_start(moment, ONE_MINUTE)


def test_partitions_are_those_read_and_those_moved_in_lock_order() -> None:
    batch = SensorBatch(
        group_id="g",
        readings=[projected(0, "s", T0, source=P1)],
        next_offsets={P1: 1, TopicPartition("other", 0): 9, P0: 4},
    )

    assert partitions_of(batch) == [TopicPartition("other", 0), P0, P1]


def test_a_plan_skips_readings_below_the_stored_offset_of_their_partition() -> None:
    readings = [
        projected(4, "a", T0, P0),
        projected(5, "b", T0, P0),
        projected(1, "c", T0, P1),
    ]
    batch = SensorBatch(group_id="g", readings=readings, next_offsets={P0: 6, P1: 2})

    plan = plan_batch(batch, {P0: 5})

    assert [p.reading.sensor_id for p in plan.fresh] == ["b", "c"]
    assert plan.skipped == 1


def test_a_plan_names_each_alert_once() -> None:
    readings = [
        projected(0, "a", T0 + timedelta(seconds=59)),
        projected(1, "a", T0 + timedelta(seconds=1)),
        projected(2, "a", T0 + timedelta(minutes=1)),
        projected(3, "a", T0 + timedelta(seconds=1)),  # the same reading again
    ]

    plan = plan_batch(SensorBatch(group_id="g", readings=readings, next_offsets={P0: 4}), {})

    assert [a.timestamp for a in plan.alerts] == [
        T0 + timedelta(seconds=59),
        T0 + timedelta(seconds=1),
        T0 + timedelta(minutes=1),
    ]


async def test_sqlite_merges_a_batch_into_its_windows_without_reading_stored_readings_again(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'merge.db'}"
    upgrade(url)
    store = SqlSensorStore(create_engine(url))
    statements: list[str] = []
    sa.event.listen(
        store.engine.sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: statements.append(statement),
    )
    values = [20.0 + (i % 17) * 0.25 for i in range(600)]
    readings = [
        ProjectedReading(
            reading=Reading(
                sensor_id="s",
                sensor_type="temperature",
                value=value,
                unit="celsius",
                timestamp=T0 + timedelta(milliseconds=90 * i),
                location="lab",
            ),
            source=P0,
            offset=i,
            alerts=(),
        )
        for i, value in enumerate(values)
    ]
    try:
        # Seven batches into the same minute; the sixth, from another group, repeats the
        # fifth: its readings are already stored and must not count twice.
        for n, start in enumerate((0, 100, 200, 300, 400, 400, 500)):
            chunk = readings[start : start + 100]
            await store.apply(
                SensorBatch(group_id=f"g{n}", readings=chunk, next_offsets={P0: start + 100})
            )
        (window,) = await store.aggregates("s", T0, T0 + ONE_MINUTE)
    finally:
        await store.close()

    assert not [s for s in statements if re.search(r"FROM readings\b", s)]
    assert window.count == 600
    assert (window.min, window.max) == (min(values), max(values))
    assert window.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert window.stddev == pytest.approx(statistics.pstdev(values), rel=1e-9)
