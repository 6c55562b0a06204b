"""The SensorStore contract, run against the in-memory store, SQLite and real PostgreSQL.

`SensorStoreContract` states the behaviour of the queries; each subclass only says how to
build the store. Data is written as the sensors job writes it (`Writes`: the job's engine
task, then the checkpoint store on the same database), so the suite also proves that what
the job writes is what the queries read. The write path itself (idempotency, fencing,
all-or-nothing) is the checkpoint store's contract (test_checkpoint_store.py).
The PostgreSQL store runs in a throwaway database created for this module and migrated to
head by Alembic, so the suite also proves the migration creates what the store needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pipeline.adapters.memory import InMemorySensorStore
from pipeline.adapters.sql import SqlSensorStore, create_engine
from pipeline.adapters.sql.migrate import current, head, upgrade
from pipeline.adapters.sql.tables import metadata
from pipeline.application.ports import (
    AlertFilter,
    AlertPosition,
    Record,
    SensorStore,
    StoredAlert,
    TopicPartition,
    TypeStats,
)
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkRows
from pipeline.domain.alerts import (
    Alert,
    AlertDomain,
    AlertKind,
    Detector,
    Severity,
    alert_id_for,
)
from pipeline.domain.sensors import Reading
from tests.databases import module_database
from tests.projection import Writes, memory_checkpoint, sql_checkpoint

TOPIC = "sensor-readings"
P0 = TopicPartition(TOPIC, 0)
P1 = TopicPartition(TOPIC, 1)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""The start of a one-minute window."""


def reading(
    sensor: str = "temp-0001",
    at: datetime = T0,
    value: float = 21.5,
    sensor_type: str = "temperature",
    **fields: object,
) -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type=sensor_type,
        value=value,
        unit={"temperature": "celsius", "humidity": "percent"}.get(sensor_type, "hPa"),
        timestamp=at,
        location="site-01/floor-1",
        **fields,  # type: ignore[arg-type]
    )


def alert_on(r: Reading, severity: Severity = Severity.WARNING) -> Alert:
    return Alert(
        alert_id=alert_id_for(r.sensor_id, r.timestamp, AlertKind.THRESHOLD_HIGH),
        source=r.sensor_id,
        kind=AlertKind.THRESHOLD_HIGH,
        severity=severity,
        message=f"{r.sensor_type} {r.value:g} above threshold on {r.sensor_id}",
        timestamp=r.timestamp,
        sensor_type=r.sensor_type,
        value=r.value,
        threshold=45.0,
    )


class SensorStoreContract:
    """What every SensorStore does. Subclasses provide the `store` and `writes` fixtures."""

    @pytest.fixture
    def store(self) -> SensorStore:
        raise NotImplementedError

    # ------------------------------------------------------------------ readings and offsets

    async def test_applied_readings_are_stored_and_counted(
        self, store: SensorStore, writes: Writes
    ) -> None:
        readings = [reading(at=T0 + timedelta(seconds=i)) for i in range(5)]

        await writes.readings(readings)

        assert await store.count_readings() == 5
        assert await store.has_sensor("temp-0001")

    async def test_aggregates_hold_the_statistics_of_each_window(
        self, store: SensorStore, writes: Writes
    ) -> None:
        values = [21.5, 22.25, 19.0, 23.75, 20.5]
        readings = [
            reading(at=T0 + timedelta(seconds=10 * i), value=v) for i, v in enumerate(values)
        ]
        readings.append(reading(at=T0 + timedelta(minutes=1, seconds=5), value=30.0))

        await writes.readings(readings)

        first, second = await store.aggregates("temp-0001", T0, T0 + timedelta(minutes=2))
        assert (first.window_start, first.window_end) == (T0, T0 + timedelta(minutes=1))
        assert (first.sensor_id, first.sensor_type) == ("temp-0001", "temperature")
        assert (first.count, first.min, first.max) == (5, 19.0, 23.75)
        assert first.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert first.stddev == pytest.approx(statistics.pstdev(values), rel=1e-9)
        assert (second.count, second.mean, second.stddev) == (1, 30.0, 0.0)

    async def test_aggregates_are_exact_when_a_window_arrives_over_batches_out_of_order(
        self, store: SensorStore, writes: Writes
    ) -> None:
        rng = random.Random(42)
        # Pressure near 1013 hPa with a small spread: naive sum-of-squares would lose digits.
        readings = [
            reading(
                sensor=f"press-{s}",
                sensor_type="pressure",
                at=T0 + timedelta(seconds=rng.randrange(0, 180), microseconds=i),
                value=1013.25 + rng.gauss(0, 0.01),
            )
            for i in range(300)
            for s in (1, 2)
        ]
        # The log holds them out of event-time order, and a window spans several batches.
        rng.shuffle(readings)
        for i in range(0, len(readings), 70):
            await writes.readings(readings[i : i + 70])

        for sensor in ("press-1", "press-2"):
            stored = await store.aggregates(sensor, T0, T0 + timedelta(minutes=3))
            assert [w.window_start for w in stored] == [T0 + timedelta(minutes=m) for m in range(3)]
            for window in stored:
                values = [
                    r.value
                    for r in readings
                    if r.sensor_id == sensor
                    and window.window_start <= r.timestamp < window.window_end
                ]
                assert window.count == len(values)
                assert (window.min, window.max) == (min(values), max(values))
                assert window.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
                assert window.stddev == pytest.approx(statistics.pstdev(values), rel=1e-6)

    async def test_aggregates_select_window_starts_in_a_half_open_range(
        self, store: SensorStore, writes: Writes
    ) -> None:
        readings = [reading(at=T0 + timedelta(minutes=m, seconds=30)) for m in range(4)]
        await writes.readings(readings)

        stored = await store.aggregates(
            "temp-0001", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)
        )

        assert [w.window_start for w in stored] == [
            T0 + timedelta(minutes=1),
            T0 + timedelta(minutes=2),
        ]
        assert await store.aggregates("temp-0002", T0, T0 + timedelta(hours=1)) == []

    # ----------------------------------------------------------------------------- alerts

    async def test_unpublished_alerts_come_oldest_first_up_to_the_limit(
        self, store: SensorStore, writes: Writes
    ) -> None:
        readings = [reading(at=T0 + timedelta(seconds=s), value=50.0 + s) for s in (30, 10, 20)]
        await writes.readings(readings, alerts=[alert_on(r) for r in readings])

        oldest = await store.unpublished_alerts(limit=2)

        assert [a.timestamp for a in oldest] == [
            T0 + timedelta(seconds=10),
            T0 + timedelta(seconds=20),
        ]

    async def test_published_alerts_leave_the_outbox_but_stay_stored(
        self, store: SensorStore, writes: Writes
    ) -> None:
        readings = [reading(at=T0 + timedelta(seconds=s), value=55.0) for s in range(3)]
        alerts = [alert_on(r) for r in readings]
        await writes.readings(readings, alerts=alerts)

        await store.mark_published([alerts[0].alert_id, alerts[2].alert_id])
        await store.mark_published([])

        assert await store.unpublished_alerts(limit=10) == [alerts[1]]
        assert len(await store.alerts()) == 3

    async def test_the_outbox_counts_the_alerts_not_yet_published(
        self, store: SensorStore, writes: Writes
    ) -> None:
        readings = [reading(at=T0 + timedelta(seconds=s), value=55.0) for s in range(3)]
        alerts = [alert_on(r) for r in readings]
        await writes.readings(readings, alerts=alerts)

        before = await store.unpublished_alert_count()
        await store.mark_published([alerts[1].alert_id])

        assert (before, await store.unpublished_alert_count()) == (3, 2)

    async def test_alerts_come_newest_first_filtered_by_source(
        self, store: SensorStore, writes: Writes
    ) -> None:
        readings = [
            reading(sensor=sensor, at=T0 + timedelta(seconds=s), value=70.0)
            for sensor, s in (("temp-a", 1), ("temp-b", 2), ("temp-a", 3))
        ]
        await writes.readings(readings, alerts=[alert_on(r, Severity.CRITICAL) for r in readings])

        newest = await store.alerts()
        of_a = await store.alerts(source="temp-a", limit=1)

        assert [(a.source, a.timestamp.second) for a in newest] == [
            ("temp-a", 3),
            ("temp-b", 2),
            ("temp-a", 1),
        ]
        assert [(a.source, a.timestamp.second, a.severity) for a in of_a] == [
            ("temp-a", 3, Severity.CRITICAL)
        ]

    # ---------------------------------------------------------------------------- queries

    async def test_latest_readings_come_newest_first_with_filters_and_limit(
        self, store: SensorStore, writes: Writes
    ) -> None:
        readings = [
            reading(sensor="temp-a", at=T0 + timedelta(seconds=1)),
            reading(sensor="hum-a", sensor_type="humidity", at=T0 + timedelta(seconds=2), value=40),
            reading(sensor="temp-b", at=T0 + timedelta(seconds=3)),
            reading(sensor="temp-a", at=T0 + timedelta(seconds=4)),
        ]
        # Stored in an order unlike event time.
        await writes.readings([readings[2], readings[0], readings[3], readings[1]])

        def keys(found: list[Reading]) -> list[tuple[str, int]]:
            return [(r.sensor_id, r.timestamp.second) for r in found]

        assert keys(await store.latest_readings()) == [
            ("temp-a", 4),
            ("temp-b", 3),
            ("hum-a", 2),
            ("temp-a", 1),
        ]
        assert keys(await store.latest_readings(limit=2)) == [("temp-a", 4), ("temp-b", 3)]
        assert keys(await store.latest_readings(sensor_id="temp-a")) == [
            ("temp-a", 4),
            ("temp-a", 1),
        ]
        assert keys(await store.latest_readings(sensor_type="humidity")) == [("hum-a", 2)]
        assert keys(await store.latest_readings(sensor_id="temp-a", sensor_type="humidity")) == []

    async def test_readings_round_trip_every_field_with_utc_microseconds(
        self, store: SensorStore, writes: Writes
    ) -> None:
        at = datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC)
        full = reading(at=at, value=-12.345678901234567, battery_level=3.5, signal_strength=-97.25)
        bare = reading(sensor="temp-0002", at=at - timedelta(microseconds=1))

        await writes.readings([full, bare])

        assert await store.latest_readings() == [full, bare]
        newest = (await store.latest_readings(limit=1))[0].timestamp
        assert newest.utcoffset() == timedelta(0)
        assert newest.microsecond == 999_999

    async def test_alert_and_window_times_come_back_as_utc(
        self, store: SensorStore, writes: Writes
    ) -> None:
        r = reading(at=T0 + timedelta(seconds=5, microseconds=123_456), value=80.0)
        await writes.readings([r], alerts=[alert_on(r)])

        [alert] = await store.unpublished_alerts(limit=1)
        [window] = await store.aggregates(r.sensor_id, T0, T0 + timedelta(minutes=1))

        assert alert.timestamp == r.timestamp
        assert alert.timestamp.utcoffset() == timedelta(0)
        assert window.window_start.utcoffset() == timedelta(0)
        assert window.window_end.utcoffset() == timedelta(0)

    async def test_an_empty_store_answers_every_query(self, store: SensorStore) -> None:
        assert await store.count_readings() == 0
        assert await store.latest_readings() == []
        assert await store.alerts() == []
        assert await store.unpublished_alerts(limit=5) == []
        assert await store.aggregates("temp-0001", T0, T0 + timedelta(days=1)) == []

    # ------------------------------------------------------------------- API read queries

    async def test_has_sensor_knows_exactly_the_sensors_with_readings(
        self, store: SensorStore, writes: Writes
    ) -> None:
        await writes.readings([reading(sensor="temp-a")])

        assert await store.has_sensor("temp-a") is True
        assert await store.has_sensor("temp-b") is False

    async def test_reading_stats_cover_the_time_range_overall_and_per_type(
        self, store: SensorStore, writes: Writes
    ) -> None:
        inside = [
            reading(sensor="temp-a", at=T0 + timedelta(seconds=1), value=10.0),
            reading(sensor="temp-b", at=T0 + timedelta(seconds=2), value=80.0),
            reading(sensor="temp-a", at=T0 + timedelta(seconds=3), value=30.0),
            reading(sensor="hum-a", sensor_type="humidity", at=T0 + timedelta(seconds=4), value=50),
        ]
        outside = [
            reading(sensor="temp-c", at=T0 - timedelta(seconds=1), value=-5.0),
            reading(sensor="temp-c", at=T0 + timedelta(minutes=5), value=99.0),
        ]
        hot = inside[1]
        await writes.readings([*inside, *outside], alerts=[alert_on(hot)])

        stats = await store.reading_stats(since=T0, until=T0 + timedelta(minutes=5))
        temperature = await store.reading_stats(
            since=T0, until=T0 + timedelta(minutes=5), sensor_type="temperature"
        )
        one_sensor = await store.reading_stats(
            since=T0, until=T0 + timedelta(minutes=5), sensor_id="temp-a"
        )

        assert (stats.overall.count, stats.overall.sensors, stats.alerts) == (4, 3, 1)
        assert stats.overall.mean == pytest.approx(42.5)
        assert (stats.overall.min, stats.overall.max) == (10.0, 80.0)
        assert sorted(stats.by_type) == ["humidity", "temperature"]
        t = stats.by_type["temperature"]
        assert (t.count, t.sensors, t.min, t.max) == (3, 2, 10.0, 80.0)
        assert t.mean == pytest.approx(40.0)
        assert list(temperature.by_type) == ["temperature"]
        assert temperature.alerts == 1
        assert (one_sensor.overall.count, one_sensor.overall.sensors, one_sensor.alerts) == (
            2,
            1,
            0,
        )

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (timedelta(seconds=0), timedelta(minutes=4)),  # whole minutes only
            (timedelta(seconds=20), timedelta(minutes=3, seconds=40)),  # partial edges
            (timedelta(seconds=10), timedelta(seconds=50)),  # inside one minute
            (timedelta(minutes=1, seconds=30), timedelta(minutes=2)),  # ends on a minute
        ],
    )
    async def test_reading_stats_are_exact_for_windows_that_cut_minutes(
        self, store: SensorStore, writes: Writes, start: timedelta, end: timedelta
    ) -> None:
        # One reading every 10 s for 5 minutes, for two sensors of two types: whichever way
        # a window cuts the minutes, its statistics are those of exactly its readings.
        readings = [
            reading(
                sensor=f"{prefix}-a",
                sensor_type=kind,
                at=T0 + timedelta(seconds=10 * step),
                value=float(step * factor),
            )
            for step in range(30)
            for prefix, kind, factor in (("temp", "temperature", 1), ("hum", "humidity", 2))
        ]
        await writes.readings(readings)
        since, until = T0 + start, T0 + end
        inside = [r for r in readings if since <= r.timestamp < until]

        stats = await store.reading_stats(since=since, until=until)

        values = [r.value for r in inside]
        assert stats.overall.count == len(inside)
        assert stats.overall.sensors == len({r.sensor_id for r in inside})
        assert stats.overall.mean == pytest.approx(sum(values) / len(values))
        assert (stats.overall.min, stats.overall.max) == (min(values), max(values))
        humidity = [r.value for r in inside if r.sensor_type == "humidity"]
        h = stats.by_type["humidity"]
        assert (h.count, h.sensors, h.min, h.max) == (
            len(humidity),
            1,
            min(humidity),
            max(humidity),
        )
        assert h.mean == pytest.approx(sum(humidity) / len(humidity))

    async def test_reading_stats_of_an_empty_range_have_no_values(
        self, store: SensorStore, writes: Writes
    ) -> None:
        await writes.readings([reading()])

        stats = await store.reading_stats(
            since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2)
        )

        assert stats.overall == TypeStats(count=0, sensors=0, mean=None, min=None, max=None)
        assert stats.by_type == {}
        assert stats.alerts == 0

    async def _store_alerts(self, store: SensorStore, writes: Writes) -> list[Alert]:
        """Five alerts: temp-a at seconds 1, 3 and 3 (two kinds), temp-b at 2, hum-a at 4."""
        specs = [
            ("temp-a", 1, "temperature", AlertKind.THRESHOLD_HIGH, Severity.WARNING),
            ("temp-b", 2, "temperature", AlertKind.THRESHOLD_HIGH, Severity.CRITICAL),
            ("temp-a", 3, "temperature", AlertKind.THRESHOLD_HIGH, Severity.WARNING),
            ("temp-a", 3, "temperature", AlertKind.THRESHOLD_LOW, Severity.CRITICAL),
            ("hum-a", 4, "humidity", AlertKind.THRESHOLD_HIGH, Severity.WARNING),
        ]
        readings = []
        alerts = []
        for sensor, second, kind_name, kind, severity in specs:
            r = reading(sensor=sensor, sensor_type=kind_name, at=T0 + timedelta(seconds=second))
            a = Alert(
                alert_id=alert_id_for(sensor, r.timestamp, kind),
                source=sensor,
                kind=kind,
                severity=severity,
                message="m",
                timestamp=r.timestamp,
                sensor_type=kind_name,
            )
            alerts.append(a)
            readings.append(r)
        await writes.readings(readings, alerts=alerts)
        return alerts

    async def test_find_alerts_filters_by_every_field(
        self, store: SensorStore, writes: Writes
    ) -> None:
        alerts = await self._store_alerts(store, writes)

        def sources(found: list[StoredAlert]) -> list[tuple[str, int]]:
            return [(s.alert.source, s.alert.timestamp.second) for s in found]

        everything = await store.find_alerts(AlertFilter())
        assert [s.alert for s in everything] == sorted(
            alerts, key=lambda a: (-a.timestamp.timestamp(), a.alert_id)
        )
        assert sources(await store.find_alerts(AlertFilter(source="temp-a"))) == [
            ("temp-a", 3),
            ("temp-a", 3),
            ("temp-a", 1),
        ]
        assert sources(await store.find_alerts(AlertFilter(sensor_type="humidity"))) == [
            ("hum-a", 4)
        ]
        assert sources(await store.find_alerts(AlertFilter(severity=Severity.CRITICAL))) == [
            ("temp-a", 3),
            ("temp-b", 2),
        ]
        window = AlertFilter(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
        assert sources(await store.find_alerts(window)) == [
            ("temp-a", 3),
            ("temp-a", 3),
            ("temp-b", 2),
        ]
        assert sources(await store.find_alerts(AlertFilter(), limit=1)) == [("hum-a", 4)]

    async def test_alerts_of_every_stream_keep_their_details_and_filter_by_stream_and_check(
        self, store: SensorStore, writes: Writes
    ) -> None:
        threshold = (await self._store_alerts(store, writes))[0]
        fraud = Alert(
            alert_id=alert_id_for("acct-7", T0, AlertKind.FRAUD),
            source="acct-7",
            kind=AlertKind.FRAUD,
            severity=Severity.CRITICAL,
            message="card testing and velocity on acct-7",
            timestamp=T0 + timedelta(seconds=5),
            domain=AlertDomain.PAYMENTS,
            score=0.93,
            reasons=("card_testing", "velocity"),
        )
        anomaly = Alert(
            alert_id=alert_id_for("temp-c", T0, AlertKind.ANOMALY),
            source="temp-c",
            kind=AlertKind.ANOMALY,
            severity=Severity.WARNING,
            message="anomalous reading on temp-c",
            timestamp=T0 + timedelta(seconds=6),
            sensor_type="temperature",
            value=80.5,
            score=0.71,
            model_version="iforest-3",
            features={"value": 80.5, "zscore": 6.25},
        )
        r = reading(sensor="temp-c", at=T0 + timedelta(seconds=6))
        await writes.readings([r], alerts=[fraud, anomaly])

        [stored_fraud] = await store.find_alerts(AlertFilter(domain=AlertDomain.PAYMENTS))
        assert stored_fraud.alert == fraud
        [stored_anomaly] = await store.find_alerts(AlertFilter(detector=Detector.ML))
        assert stored_anomaly.alert == anomaly
        by_threshold = await store.find_alerts(AlertFilter(detector=Detector.THRESHOLD))
        assert threshold in [s.alert for s in by_threshold]
        assert {s.alert.kind for s in by_threshold} <= {
            AlertKind.THRESHOLD_HIGH,
            AlertKind.THRESHOLD_LOW,
        }
        sensors = await store.find_alerts(AlertFilter(domain=AlertDomain.SENSORS))
        assert fraud not in [s.alert for s in sensors]
        assert len(sensors) == 6
        assert fraud in await store.unpublished_alerts(limit=100)

    async def test_find_alerts_pages_continue_after_the_last_alert_without_gaps(
        self, store: SensorStore, writes: Writes
    ) -> None:
        await self._store_alerts(store, writes)
        everything = await store.find_alerts(AlertFilter())

        pages: list[list[StoredAlert]] = []
        after: AlertPosition | None = None
        while page := await store.find_alerts(AlertFilter(), after=after, limit=2):
            pages.append(page)
            after = AlertPosition(page[-1].alert.timestamp, page[-1].alert.alert_id)

        assert [len(p) for p in pages] == [2, 2, 1]
        assert [s for p in pages for s in p] == everything

    async def test_acknowledging_an_alert_is_idempotent_and_keeps_the_first_time(
        self, store: SensorStore, writes: Writes
    ) -> None:
        alerts = await self._store_alerts(store, writes)
        first, later = T0 + timedelta(hours=1), T0 + timedelta(hours=2)

        acked = await store.acknowledge_alert(alerts[0].alert_id, first)
        again = await store.acknowledge_alert(alerts[0].alert_id, later)

        assert acked == StoredAlert(alert=alerts[0], acknowledged_at=first)
        assert again == acked
        open_ = await store.find_alerts(AlertFilter(acknowledged=False))
        done = await store.find_alerts(AlertFilter(acknowledged=True))
        assert [s.alert.alert_id for s in done] == [alerts[0].alert_id]
        assert len(open_) == 4
        assert all(s.acknowledged_at is None for s in open_)

    async def test_acknowledging_an_unknown_alert_finds_nothing(
        self, store: SensorStore, writes: Writes
    ) -> None:
        await self._store_alerts(store, writes)

        assert await store.acknowledge_alert(uuid.uuid4(), T0) is None

    async def test_a_reachable_store_answers_ping(self, store: SensorStore) -> None:
        await store.ping()

        assert await store.count_readings() == 0


class TestInMemorySensorStore(SensorStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[SensorStore]:
        store = InMemorySensorStore()
        yield store
        await store.close()

    @pytest.fixture
    def writes(self, store: InMemorySensorStore) -> Writes:
        return Writes(memory_checkpoint(store))


class SqlStoreMigrations:
    """Extra behaviour of the SQL stores: the schema comes from the Alembic migrations."""

    @pytest.fixture
    def writes(self, store: SqlSensorStore) -> Writes:
        return Writes(sql_checkpoint(store))

    async def test_the_database_is_migrated_to_the_newest_revision(
        self, store: SensorStore, sql_url: str
    ) -> None:
        assert head() == "0012"
        assert await asyncio.to_thread(current, sql_url) == head()

    async def test_the_migrated_schema_matches_the_tables_the_store_queries(
        self, store: SqlSensorStore
    ) -> None:
        def differences(sync: sa.Connection) -> list[object]:
            context = MigrationContext.configure(
                sync, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))

        async with store.engine.connect() as conn:
            diffs = await conn.run_sync(differences)

        assert [d for d in diffs if _subject(d) not in self.unreflected] == []

    unreflected: frozenset[str] = frozenset()
    """Indexes and `table.column` defaults the backend's reflection cannot describe (so
    autogenerate reports them)."""


def _subject(diff: object) -> str | None:
    if isinstance(diff, tuple) and diff[0] in ("add_index", "remove_index"):
        return str(diff[1].name)
    if isinstance(diff, list) and len(diff) == 1 and diff[0][0] == "modify_default":
        return f"{diff[0][2]}.{diff[0][3]}"
    return None


class TestSqliteSensorStore(SensorStoreContract, SqlStoreMigrations):
    # SQLite reflects the expression index ("time" DESC) without its expression, and has no
    # identity columns (the state log is written on PostgreSQL only).
    unreflected = frozenset({"ix_readings_time", "stream_state_log.seq"})

    @pytest.fixture
    def sql_url(self, tmp_path: Path) -> str:
        url = f"sqlite+aiosqlite:///{tmp_path / 'sensors.db'}"
        upgrade(url)
        return url

    @pytest.fixture
    async def store(self, sql_url: str) -> AsyncIterator[SensorStore]:
        store = SqlSensorStore(create_engine(sql_url))
        yield store
        await store.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """One throwaway database for this module, created and migrated by Alembic."""
    yield from module_database("contract_sensor_store")


@pytest.mark.integration
class TestPostgresSensorStore(SensorStoreContract, SqlStoreMigrations):
    @pytest.fixture
    def sql_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    async def store(self, sql_url: str) -> AsyncIterator[SensorStore]:
        store = SqlSensorStore(create_engine(sql_url, pool_size=2))
        async with store.engine.begin() as conn:
            names = ", ".join(metadata.tables)
            await conn.execute(sa.text(f"TRUNCATE {names}"))
        yield store
        await store.close()

    async def test_connections_name_the_application(self, store: SqlSensorStore) -> None:
        async with store.engine.connect() as conn:
            name = await conn.scalar(sa.text("SHOW application_name"))

        assert name == "pipeline"

    async def test_a_cancelled_commit_stores_all_or_nothing_and_the_store_keeps_working(
        self, store: SqlSensorStore
    ) -> None:
        readings = [
            reading(sensor=f"temp-{i % 50:02d}", at=T0 + timedelta(seconds=i // 50))
            for i in range(20_000)
        ]
        checkpoint = sql_checkpoint(store)
        origins = [
            Record(topic=TOPIC, partition=0, offset=i, key=None, value=b"", timestamp_ms=0)
            for i in range(len(readings))
        ]
        big = CheckpointBatch(
            group_id="sensors",
            start_offsets={P0: 0},
            next_offsets={P0: len(readings)},
            writes=[
                SinkRows(sink="readings", rows=readings, parts=[0] * len(readings), origins=origins)
            ],
        )
        task = asyncio.create_task(checkpoint.commit(big))
        await asyncio.sleep(0.05)

        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        assert await store.count_readings() in (0, 20_000)
        if await store.count_readings() == 0:
            await checkpoint.commit(big)
        assert await store.count_readings() == 20_000
        assert await checkpoint.stored_offsets("sensors", [P0]) == {P0: 20_000}
