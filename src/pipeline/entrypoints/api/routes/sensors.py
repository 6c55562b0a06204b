"""`/api/v1/sensors/…`: latest readings, statistics, anomalies and one-minute aggregates."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter

from pipeline.application.ports import AlertFilter
from pipeline.domain.alerts import AlertDomain, Detector
from pipeline.entrypoints.api.models import (
    AggregateOut,
    AlertOut,
    Anomalies,
    LatestReadings,
    ReadingOut,
    SensorAggregates,
    SensorStats,
    TypeStatsOut,
)
from pipeline.entrypoints.api.params import (
    PathSensorId,
    SensorId,
    SensorType,
    earlier,
    known_sensor_type,
    parse_time,
    time_parameter,
)
from pipeline.entrypoints.api.problems import problem_responses
from pipeline.entrypoints.bootstrap import Pipeline

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many (1–1000).")]
MAX_AGGREGATE_RANGE = timedelta(days=7)
DEFAULT_AGGREGATE_RANGE = timedelta(hours=1)


def sensor_controller(*, reads_need_key: bool) -> type[Controller]:
    """The sensors controller; `reads_need_key` documents the 401 of its guarded reads."""
    errors = problem_responses(400, 503, *([401] if reads_need_key else []))

    class SensorController(Controller):
        """Readings and what the pipeline derived from them."""

        path = "/api/v1/sensors"
        tags = ["sensors"]  # noqa: RUF012 - Litestar reads it as a class attribute

        @get("/latest", summary="Latest readings", responses=errors)
        async def latest(
            self,
            pipeline: NamedDependency[Pipeline],
            sensor_id: SensorId = None,
            sensor_type: SensorType = None,
            limit: Limit = 10,
        ) -> LatestReadings:
            """The most recent readings by event time, newest first."""
            readings = await pipeline.store.latest_readings(
                sensor_id=sensor_id, sensor_type=known_sensor_type(sensor_type), limit=limit
            )
            return LatestReadings(
                count=len(readings), readings=[ReadingOut.of(r) for r in readings]
            )

        @get("/stats", summary="Statistics of a recent time window", responses=errors)
        async def stats(
            self,
            pipeline: NamedDependency[Pipeline],
            time_window_minutes: Annotated[
                int, QueryParameter(ge=1, le=1440, description="Window length, minutes (1–1440).")
            ] = 5,
            sensor_type: SensorType = None,
            sensor_id: SensorId = None,
        ) -> SensorStats:
            """Readings with event time in the last `time_window_minutes`: count, rate, active
            sensors, alerts raised, mean/min/max, and the same per sensor type."""
            until = pipeline.clock.now()
            since = until - timedelta(minutes=time_window_minutes)
            stats = await pipeline.store.reading_stats(
                since=since,
                until=until,
                sensor_type=known_sensor_type(sensor_type),
                sensor_id=sensor_id,
            )
            overall = stats.overall
            # Means, minima and maxima are per unit: across types they would mix °C, % and hPa.
            one_type = len(stats.by_type) == 1
            return SensorStats(
                time_window_minutes=time_window_minutes,
                since=since,
                until=until,
                count=overall.count,
                messages_per_second=overall.count / (time_window_minutes * 60),
                active_sensors=overall.sensors,
                alert_count=stats.alerts,
                mean=overall.mean if one_type else None,
                min=overall.min if one_type else None,
                max=overall.max if one_type else None,
                by_type={name: TypeStatsOut.of(name, s) for name, s in stats.by_type.items()},
            )

        @get("/anomalies", summary="Alerts the pipeline raised", responses=errors)
        async def anomalies(
            self,
            pipeline: NamedDependency[Pipeline],
            sensor_type: SensorType = None,
            since: Annotated[
                str | None, time_parameter("Only alerts with event time at or after this.")
            ] = None,
            limit: Limit = 100,
            detector: Annotated[
                Detector | None,
                QueryParameter(
                    description="Only alerts of this source: `threshold` rules or the `ml` model."
                ),
            ] = None,
        ) -> Anomalies:
            """Alerts the pipeline raised on readings, newest first: threshold alerts and the
            anomaly model's (each with its `detector`; a model's with its score, features
            and model version)."""
            query = AlertFilter(
                domain=AlertDomain.SENSORS,
                detector=detector,
                sensor_type=known_sensor_type(sensor_type),
                since=parse_time(since, "since"),
            )
            found = await pipeline.store.find_alerts(query, limit=limit)
            return Anomalies(count=len(found), anomalies=[AlertOut.of(a) for a in found])

        @get(
            "/{sensor_id:str}/aggregates",
            summary="One-minute aggregates of a sensor",
            responses=errors | problem_responses(404),
        )
        async def aggregates(
            self,
            pipeline: NamedDependency[Pipeline],
            sensor_id: PathSensorId,
            start: Annotated[
                str | None,
                time_parameter("Windows starting at or after (default: to − 1 h).", name="from"),
            ] = None,
            end: Annotated[
                str | None, time_parameter("Windows starting before (default: now).", name="to")
            ] = None,
        ) -> SensorAggregates:
            """The sensor's one-minute event-time windows with window_start in [from, to), oldest
            first, at most 7 days at a time: a longer range is answered for its first 7 days,
            and the answer's `to` says where it stopped (ask again from there). A `from` at or
            after `to` is an empty range. 404 when the sensor has no readings at all."""
            until = parse_time(end, "to") or pipeline.clock.now()
            since = parse_time(start, "from") or earlier(until, DEFAULT_AGGREGATE_RANGE)
            since = min(since, until)
            if until - since > MAX_AGGREGATE_RANGE:  # so since + 7 days < until: no overflow
                until = since + MAX_AGGREGATE_RANGE
            if not await pipeline.store.has_sensor(sensor_id):
                raise NotFoundException(f"no readings of sensor {sensor_id!r}")
            windows = (
                await pipeline.store.aggregates(sensor_id, since, until) if since < until else []
            )
            return SensorAggregates(
                sensor_id=sensor_id,
                start=since,
                end=until,
                aggregates=[AggregateOut.of(w) for w in windows],
            )

    return SensorController
