"""Working out what a batch asks of the database before any SQL is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pipeline.adapters.sql.batch import minute_of, partitions_of, plan_batch
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


def test_a_plan_names_each_touched_window_once_and_each_alert_once() -> None:
    readings = [
        projected(0, "a", T0 + timedelta(seconds=59)),
        projected(1, "a", T0 + timedelta(seconds=1)),
        projected(2, "a", T0 + timedelta(minutes=1)),
        projected(3, "a", T0 + timedelta(seconds=1)),  # the same reading again
    ]

    plan = plan_batch(SensorBatch(group_id="g", readings=readings, next_offsets={P0: 4}), {})

    assert plan.windows == [("a", T0), ("a", T0 + timedelta(minutes=1))]
    assert [a.timestamp for a in plan.alerts] == [
        T0 + timedelta(seconds=59),
        T0 + timedelta(seconds=1),
        T0 + timedelta(minutes=1),
    ]
