"""The TimeSeries contract, run against the in-memory adapter and the InfluxDB adapter on
the stack's time-series server (scripts/stack: VictoriaMetrics, read back through its
export API). Every test writes its own uniquely named measurement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from pipeline.adapters.memory.timeseries import InMemoryTimeSeries
from pipeline.adapters.timeseries import InfluxTimeSeries
from pipeline.application.ports.timeseries import Point, TimeSeries
from tests.timeseries import stored_points, timeseries_url

T0 = datetime(2026, 11, 25, 12, 0, 0, 250_000, tzinfo=UTC)


class TimeSeriesContract:
    """What every TimeSeries adapter must do. Subclasses provide `series` and `read`."""

    replaces_fields = True
    """Whether a point written again with other field values keeps the last ones."""

    async def read(self, series: TimeSeries, measurement: str) -> list[Point]:
        raise NotImplementedError

    @pytest.fixture
    def measurement(self) -> str:
        return f"contract_{uuid4().hex}"

    def point(self, measurement: str, i: int, sensor: str = "s-1", **fields: float) -> Point:
        return Point(
            measurement=measurement,
            tags={"sensor_id": sensor, "sensor_type": "temperature"},
            fields=fields or {"value": 20.0 + i, "count": i + 1},
            time=T0 + timedelta(seconds=i),
        )

    async def test_written_points_are_read_back_with_their_tags_fields_and_time(
        self, series: TimeSeries, measurement: str
    ) -> None:
        written = [self.point(measurement, i) for i in range(3)]

        await series.write(written)

        assert await self.read(series, measurement) == written

    async def test_a_point_written_again_is_stored_once(
        self, series: TimeSeries, measurement: str
    ) -> None:
        written = [self.point(measurement, i) for i in range(3)]
        await series.write(written)

        await series.write(written)
        await series.write(written[1:2])

        assert await self.read(series, measurement) == written

    async def test_a_point_written_again_with_new_fields_replaces_them(
        self, series: TimeSeries, measurement: str
    ) -> None:
        if not self.replaces_fields:
            pytest.skip("this server keeps one of the values written, not the last")
        await series.write([self.point(measurement, 0, value=1.0)])

        await series.write([self.point(measurement, 0, value=2.0)])

        assert await self.read(series, measurement) == [self.point(measurement, 0, value=2.0)]

    async def test_points_of_other_tags_at_the_same_time_are_other_series(
        self, series: TimeSeries, measurement: str
    ) -> None:
        first = self.point(measurement, 0, sensor="s-1")
        second = self.point(measurement, 0, sensor="s-2")

        await series.write([first, second])

        stored = await self.read(series, measurement)
        assert sorted(p.tags["sensor_id"] for p in stored) == ["s-1", "s-2"]

    async def test_more_points_than_one_request_holds_are_all_stored(
        self, series: TimeSeries, measurement: str
    ) -> None:
        written = [self.point(measurement, i) for i in range(11)]

        await series.write(written)

        assert await self.read(series, measurement) == written

    async def test_a_server_that_answers_answers_a_ping(self, series: TimeSeries) -> None:
        await series.ping()


class TestInMemoryTimeSeries(TimeSeriesContract):
    @pytest.fixture
    def series(self) -> InMemoryTimeSeries:
        return InMemoryTimeSeries()

    async def read(self, series: TimeSeries, measurement: str) -> list[Point]:
        assert isinstance(series, InMemoryTimeSeries)
        return series.points(measurement)


class TestInfluxTimeSeriesOnTheStackServer(TimeSeriesContract):
    # VictoriaMetrics' deduplication keeps one sample per series and millisecond, but any
    # of those written (README, "Reading the time series"); InfluxDB keeps the last.
    replaces_fields = False

    @pytest.fixture
    async def series(self) -> AsyncIterator[InfluxTimeSeries]:
        adapter = InfluxTimeSeries(
            url=timeseries_url(), token="", org="pipeline", bucket="contract", batch_size=4
        )
        yield adapter
        await adapter.close()

    async def read(self, series: TimeSeries, measurement: str) -> list[Point]:
        assert isinstance(series, InfluxTimeSeries)
        return await stored_points(series.url, measurement)
