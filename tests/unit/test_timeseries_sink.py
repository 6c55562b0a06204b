"""The sensors job's time-series sinks on the in-memory adapters: each valid reading and
each sensor-minute's statistics become points, written before the batch's checkpoint
commits (so a replayed batch writes the same points over themselves), and a time-series
outage pauses the job as a database outage does."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.adapters.memory.timeseries import InMemoryTimeSeries
from pipeline.application.errors import StoreUnavailable, TimeSeriesUnavailable
from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkResult, SinkRows
from pipeline.application.ports.timeseries import Point
from pipeline.application.timeseries_sink import TimeSeriesCheckpoint
from pipeline.application.topic_names import dead_letter_topic, retry_topic
from pipeline.domain import Reading
from pipeline.entrypoints import cli
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job
from pipeline.jobs.sensor_points import AGGREGATE_MEASUREMENT, READING_MEASUREMENT
from tests.faults import FaultyCheckpoint

TOPIC = "sensor-readings"
MINUTE = datetime(2026, 11, 25, 11, 58, tzinfo=UTC)


def reading(second: int, value: float, sensor: str = "temp-0001") -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=MINUTE + timedelta(seconds=second),
        location="site-01/floor-1",
        battery_level=80.0,
    )


def with_series(**retry: float) -> Settings:
    return Settings.model_validate(
        {"timeseries": {"url": "http://timeseries.invalid:8086"}, "retry": retry}
    )


async def wired(settings: Settings, series: InMemoryTimeSeries, clock: ManualClock) -> Pipeline:
    pipeline = await bootstrap(
        settings,
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
        clock=clock,
        timeseries=series,
    )
    await pipeline.ensure_topics()
    return pipeline


async def publish(pipeline: Pipeline, *readings: Reading) -> None:
    for r in readings:
        value = await pipeline.reading_codec.encode(r)
        await pipeline.log.publish(TOPIC, r.sensor_id.encode(), value)
    await pipeline.log.flush()


async def test_each_valid_reading_and_its_minute_become_points(clock: ManualClock) -> None:
    series = InMemoryTimeSeries()
    pipeline = await wired(with_series(), series, clock)
    invalid = reading(40, -500.0)
    await publish(pipeline, reading(0, 20.0), reading(10, 22.0), reading(20, 24.0), invalid)

    await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    points = series.points(READING_MEASUREMENT)
    assert [(p.time, p.fields["value"]) for p in points] == [
        (MINUTE, 20.0),
        (MINUTE + timedelta(seconds=10), 22.0),
        (MINUTE + timedelta(seconds=20), 24.0),
    ]
    assert points[0].tags == {"sensor_id": "temp-0001", "sensor_type": "temperature"}
    assert points[0].fields == {"value": 20.0, "battery_level": 80.0}
    [minute] = series.points(AGGREGATE_MEASUREMENT)
    assert minute.time == MINUTE
    assert minute.fields["count"] == 3
    assert minute.fields["min"] == 20.0
    assert minute.fields["max"] == 24.0
    assert minute.fields["mean"] == pytest.approx(22.0)
    assert await pipeline.store.count_readings() == 3
    await pipeline.aclose()


async def test_without_a_timeseries_url_the_job_writes_no_points_and_needs_no_server(
    clock: ManualClock,
) -> None:
    pipeline = await wired(Settings(), InMemoryTimeSeries(), clock)
    job = pipeline.job_run("sensors").job

    assert set(job.sinks) == {"readings", "alerts", "aggregates_1m"}
    await pipeline.aclose()
    default = await bootstrap(Settings(), log=InMemoryEventLog(), store=InMemorySensorStore())
    assert default.timeseries is None
    await default.aclose()


def a_batch(points: list[Point], offset: int) -> CheckpointBatch:
    tp = TopicPartition(TOPIC, 0)
    return CheckpointBatch(
        group_id="g",
        start_offsets={tp: offset},
        next_offsets={tp: offset + len(points)},
        writes=[
            SinkRows(
                sink="points", rows=points, parts=[0] * len(points), origins=[None] * len(points)
            ),
            SinkRows(sink="rows", rows=["r1", "r2"], parts=[0, 0], origins=[None] * 2),
        ],
    )


def a_point(second: int, value: float) -> Point:
    return Point(
        measurement="m",
        tags={"sensor_id": "s"},
        fields={"value": value},
        time=MINUTE + timedelta(seconds=second),
    )


class Rows:
    def __init__(self) -> None:
        self.rows: list[object] = []

    def write(self, rows: list[object], origins: object, undo: list[object]) -> SinkResult:
        self.rows.extend(rows)
        return SinkResult(written=len(rows))


async def test_points_are_written_before_the_commit_and_a_replayed_batch_writes_them_once() -> None:
    series = InMemoryTimeSeries()
    rows = Rows()
    inner = FaultyCheckpoint(InMemoryCheckpointStore({"rows": rows}), failures=1)
    store = TimeSeriesCheckpoint(inner, series, ["points"])
    batch = a_batch([a_point(0, 1.0), a_point(1, 2.0)], offset=0)

    with pytest.raises(StoreUnavailable):
        await store.commit(batch)  # the crash: points written, nothing committed
    assert len(series.points()) == 2
    assert rows.rows == []
    committed = await store.commit(batch)  # the replay

    assert [p.fields["value"] for p in series.points()] == [1.0, 2.0]
    assert rows.rows == ["r1", "r2"]
    assert committed.written == {"rows": 2, "points": 2}
    assert await store.stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {
        TopicPartition(TOPIC, 0): 2
    }


async def test_a_timeseries_outage_fails_the_batch_before_anything_commits_and_fails_ping() -> None:
    series = InMemoryTimeSeries()
    series.unavailable = True
    inner = InMemoryCheckpointStore({"rows": Rows()})
    store = TimeSeriesCheckpoint(inner, series, ["points"])

    with pytest.raises(TimeSeriesUnavailable):
        await store.commit(a_batch([a_point(0, 1.0), a_point(1, 2.0)], offset=0))
    with pytest.raises(TimeSeriesUnavailable):
        await store.ping()

    assert await inner.stored_offsets("g", [TopicPartition(TOPIC, 0)]) == {}


async def test_a_timeseries_outage_pauses_the_job_and_nothing_goes_to_a_retry_topic(
    clock: ManualClock,
) -> None:
    series = InMemoryTimeSeries()
    series.unavailable = True
    settings = with_series(initial_backoff_s=0.01, max_backoff_s=0.02, in_place_attempts=2)
    pipeline = await wired(settings, series, clock)
    await publish(pipeline, *(reading(i, 20.0 + i) for i in range(5)))

    run = asyncio.create_task(run_named_job(pipeline, "sensors", until_caught_up=True))
    await asyncio.sleep(0.5)  # many times the in-place attempts' budget
    assert not run.done()
    assert await pipeline.store.count_readings() == 0
    series.unavailable = False
    await asyncio.wait_for(run, 10)

    assert len(series.points(READING_MEASUREMENT)) == 5
    assert await pipeline.store.count_readings() == 5
    retried = await pipeline.log.end_offsets(retry_topic(TOPIC, 1))
    assert sum(retried.values()) == 0
    await pipeline.aclose()


async def test_a_reading_whose_point_the_server_refuses_becomes_a_dead_letter(
    clock: ManualClock,
) -> None:
    series = InMemoryTimeSeries(refuse=lambda p: p.fields.get("value") == 23.0)
    pipeline = await wired(with_series(), series, clock)
    await publish(pipeline, *(reading(i, 20.0 + i) for i in range(12)))

    stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    assert stats.rejected == {"timeseries_rejected": 1}
    assert sorted(p.fields["value"] for p in series.points(READING_MEASUREMENT)) == [
        20.0 + i for i in range(12) if i != 3
    ]
    # As with any row a store refuses: the record's other rows are stored, and the dead
    # letter is what lets `pipeline dlq` send it again once the server takes it.
    assert await pipeline.store.count_readings() == 12
    letters = await pipeline.log.end_offsets(dead_letter_topic(TOPIC))
    assert sum(letters.values()) == 1
    await pipeline.aclose()


def test_pipeline_jobs_lists_the_time_series_sinks_when_a_server_is_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_TIMESERIES__URL", "http://127.0.0.1:18086")

    assert cli.main(["jobs", "--json"]) == 0

    sensors = json.loads(capsys.readouterr().out)[0]
    assert sensors["sinks"]["reading_points"] == "time series: measurement sensor_reading"
    assert sensors["sinks"]["aggregate_points"] == "time series: measurement sensor_aggregate_1m"
    assert "time-series points" in sensors["guarantee"]
