"""`/api/v1/sensors/…`: latest readings, statistics, anomalies, aggregates, and their 400s."""

from __future__ import annotations

from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemorySensorStore
from pipeline.domain import DEFAULT_THRESHOLDS, Alert, check_thresholds
from pipeline.domain.alerts import AlertKind, Severity, alert_id_for
from tests.api.conftest import minutes_ago, reading, store_readings
from tests.projection import writes_for

Client = AsyncTestClient[Litestar]


async def test_latest_returns_the_newest_readings_first_with_every_field(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await store_readings(
        store,
        [
            reading(minutes_ago(clock, 3), sensor="temp-a", value=20.0),
            reading(minutes_ago(clock, 1), sensor="temp-b", value=22.0),
            reading(minutes_ago(clock, 2), sensor="hum-a", value=40.0, sensor_type="humidity"),
        ],
    )

    response = await client.get("/api/v1/sensors/latest", params={"limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [r["sensor_id"] for r in body["readings"]] == ["temp-b", "hum-a"]
    assert body["readings"][0] == {
        "sensor_id": "temp-b",
        "sensor_type": "temperature",
        "value": 22.0,
        "unit": "celsius",
        "timestamp": minutes_ago(clock, 1).isoformat().replace("+00:00", "Z"),
        "location": "site-01/floor-1",
        "battery_level": None,
        "signal_strength": None,
    }


async def test_latest_filters_by_sensor_and_type(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await store_readings(
        store,
        [
            reading(minutes_ago(clock, 3), sensor="temp-a"),
            reading(minutes_ago(clock, 2), sensor="temp-b"),
            reading(minutes_ago(clock, 1), sensor="hum-a", value=40.0, sensor_type="humidity"),
        ],
    )

    by_sensor = await client.get("/api/v1/sensors/latest", params={"sensor_id": "temp-a"})
    by_type = await client.get("/api/v1/sensors/latest", params={"sensor_type": "humidity"})

    assert [r["sensor_id"] for r in by_sensor.json()["readings"]] == ["temp-a"]
    assert [r["sensor_id"] for r in by_type.json()["readings"]] == ["hum-a"]


async def test_latest_defaults_to_ten_readings(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await store_readings(store, [reading(minutes_ago(clock, i / 10)) for i in range(15)])

    response = await client.get("/api/v1/sensors/latest")

    assert response.json()["count"] == 10


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/api/v1/sensors/latest", {"limit": "0"}, "limit"),
        ("/api/v1/sensors/latest", {"limit": "1001"}, "limit"),
        ("/api/v1/sensors/latest", {"limit": "ten"}, "limit"),
        ("/api/v1/sensors/latest", {"sensor_id": "bad\x00id"}, "sensor_id"),
        ("/api/v1/sensors/stats", {"time_window_minutes": "0"}, "time_window_minutes"),
        ("/api/v1/sensors/stats", {"time_window_minutes": "1441"}, "time_window_minutes"),
        ("/api/v1/sensors/anomalies", {"since": "yesterday"}, "since"),
        ("/api/v1/sensors/anomalies", {"limit": "-1"}, "limit"),
        ("/api/v1/sensors/temp-a/aggregates", {"from": "not-a-time"}, "from"),
    ],
)
async def test_a_bad_parameter_is_a_400_problem_naming_it(
    client: Client, path: str, params: dict[str, str], parameter: str
) -> None:
    response = await client.get(path, params=params)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400
    assert problem["title"] == "Bad Request"
    assert parameter in problem["detail"]


async def test_stats_summarise_the_window_overall_and_per_type(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await store_readings(
        store,
        [
            reading(minutes_ago(clock, 1), sensor="temp-a", value=20.0),
            reading(minutes_ago(clock, 2), sensor="temp-b", value=80.0),  # a critical alert
            reading(minutes_ago(clock, 3), sensor="hum-a", value=50.0, sensor_type="humidity"),
            reading(minutes_ago(clock, 30), sensor="temp-c", value=99.0),  # outside the window
        ],
    )

    response = await client.get("/api/v1/sensors/stats", params={"time_window_minutes": 5})

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 3
    assert body["messages_per_second"] == pytest.approx(3 / 300)
    assert body["active_sensors"] == 3
    assert body["alert_count"] == 1
    # °C and % do not average: the window's own mean, min and max are per type only.
    assert (body["mean"], body["min"], body["max"]) == (None, None, None)
    assert body["by_type"]["temperature"] == {
        "count": 2,
        "active_sensors": 2,
        "unit": "celsius",
        "mean": 50.0,
        "min": 20.0,
        "max": 80.0,
    }
    assert body["by_type"]["humidity"]["count"] == 1
    assert body["by_type"]["humidity"]["unit"] == "percent"


async def test_stats_filter_by_type_and_sensor(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await store_readings(
        store,
        [
            reading(minutes_ago(clock, 1), sensor="temp-a", value=20.0),
            reading(minutes_ago(clock, 2), sensor="temp-b", value=30.0),
            reading(minutes_ago(clock, 3), sensor="hum-a", value=50.0, sensor_type="humidity"),
        ],
    )

    by_type = await client.get("/api/v1/sensors/stats", params={"sensor_type": "temperature"})
    by_sensor = await client.get("/api/v1/sensors/stats", params={"sensor_id": "temp-b"})

    assert list(by_type.json()["by_type"]) == ["temperature"]
    assert by_type.json()["count"] == 2
    # One type in the window: its mean, min and max are the window's too.
    assert (by_type.json()["mean"], by_type.json()["min"], by_type.json()["max"]) == (
        25.0,
        20.0,
        30.0,
    )
    assert (by_sensor.json()["count"], by_sensor.json()["mean"]) == (1, 30.0)


async def test_stats_of_a_quiet_window_are_zero_with_null_values(client: Client) -> None:
    response = await client.get("/api/v1/sensors/stats")

    body = response.json()
    assert (body["count"], body["active_sensors"], body["alert_count"]) == (0, 0, 0)
    assert (body["mean"], body["min"], body["max"]) == (None, None, None)
    assert body["by_type"] == {}


async def test_anomalies_are_the_alerts_the_pipeline_raised_newest_first(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    raised = await store_readings(
        store,
        [
            reading(minutes_ago(clock, 10), sensor="temp-a", value=50.0),  # warning
            reading(minutes_ago(clock, 5), sensor="temp-b", value=21.0),  # normal
            reading(minutes_ago(clock, 2), sensor="hum-a", value=99.0, sensor_type="humidity"),
        ],
    )

    everything = await client.get("/api/v1/sensors/anomalies")
    recent = await client.get(
        "/api/v1/sensors/anomalies", params={"since": minutes_ago(clock, 5).isoformat()}
    )
    temperature = await client.get(
        "/api/v1/sensors/anomalies", params={"sensor_type": "temperature"}
    )

    assert len(raised) == 2
    body = everything.json()
    assert body["count"] == 2
    assert [a["source"] for a in body["anomalies"]] == ["hum-a", "temp-a"]
    assert body["anomalies"][0]["severity"] == "critical"
    assert body["anomalies"][0]["acknowledged"] is False
    assert [a["source"] for a in recent.json()["anomalies"]] == ["hum-a"]
    assert [a["source"] for a in temperature.json()["anomalies"]] == ["temp-a"]


async def test_aggregates_are_the_one_minute_windows_in_the_range(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    now = clock.now()
    await store_readings(
        store,
        [
            reading(now - timedelta(minutes=3, seconds=50), value=10.0),
            reading(now - timedelta(minutes=3, seconds=40), value=20.0),
            reading(now - timedelta(minutes=1, seconds=30), value=30.0),
            reading(now - timedelta(hours=3), value=99.0),
        ],
    )

    response = await client.get("/api/v1/sensors/temp-0001/aggregates")

    assert response.status_code == 200
    body = response.json()
    assert body["sensor_id"] == "temp-0001"
    assert [(w["count"], w["mean"], w["min"], w["max"]) for w in body["aggregates"]] == [
        (2, 15.0, 10.0, 20.0),
        (1, 30.0, 30.0, 30.0),
    ]
    assert body["aggregates"][0]["stddev"] == pytest.approx(5.0)


async def test_aggregates_take_an_explicit_range(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    now = clock.now()
    await store_readings(
        store, [reading(now - timedelta(hours=3)), reading(now - timedelta(minutes=2))]
    )
    start = (now - timedelta(hours=4)).isoformat()
    end = (now - timedelta(hours=2)).isoformat()

    response = await client.get(
        "/api/v1/sensors/temp-0001/aggregates", params={"from": start, "to": end}
    )

    assert [w["window_start"] for w in response.json()["aggregates"]] == [
        (now - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    ]


async def test_aggregates_of_an_unknown_sensor_are_a_404(client: Client) -> None:
    response = await client.get("/api/v1/sensors/no-such-sensor/aggregates")

    assert response.status_code == 404
    assert "no-such-sensor" in response.json()["detail"]


async def test_a_range_longer_than_7_days_is_answered_for_its_first_7_days(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    now = clock.now()
    await store_readings(
        store,
        [reading(now - timedelta(days=20)), reading(now - timedelta(days=10), sensor="temp-0001")],
    )
    start = now - timedelta(days=21)

    response = await client.get(
        "/api/v1/sensors/temp-0001/aggregates",
        params={"from": start.isoformat(), "to": now.isoformat()},
    )

    body = response.json()
    assert response.status_code == 200
    assert body["to"] == (start + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    assert [w["window_start"] for w in body["aggregates"]] == [
        (now - timedelta(days=20)).isoformat().replace("+00:00", "Z")
    ]


async def test_from_at_or_after_to_is_an_empty_range(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    await store_readings(store, [reading(minutes_ago(clock, 1))])

    response = await client.get(
        "/api/v1/sensors/temp-0001/aggregates",
        params={"from": "2026-11-25T12:00:00Z", "to": "2026-11-25T11:00:00Z"},
    )

    assert response.status_code == 200
    assert response.json()["aggregates"] == []


async def test_anomalies_serve_model_alerts_beside_threshold_alerts_with_their_source(
    client: Client, store: InMemorySensorStore, clock: ManualClock
) -> None:
    spike = reading(minutes_ago(clock, 3), sensor="temp-a", value=50.0)
    odd = reading(minutes_ago(clock, 1), sensor="temp-b", value=24.0)
    threshold = check_thresholds(spike, DEFAULT_THRESHOLDS)
    assert threshold is not None
    model = Alert(
        alert_id=alert_id_for(odd.sensor_id, odd.timestamp, AlertKind.ANOMALY),
        source=odd.sensor_id,
        kind=AlertKind.ANOMALY,
        severity=Severity.WARNING,
        message="scored anomalous",
        timestamp=odd.timestamp,
        sensor_type=odd.sensor_type,
        value=odd.value,
        score=0.21,
        model_version="forest-1",
        features={"zscore": 7.5},
    )
    await writes_for(store).readings([spike, odd], alerts=[threshold, model])

    everything = (await client.get("/api/v1/sensors/anomalies")).json()["anomalies"]
    ml = (await client.get("/api/v1/sensors/anomalies", params={"detector": "ml"})).json()

    assert [(a["source"], a["detector"]) for a in everything] == [
        ("temp-b", "ml"),
        ("temp-a", "threshold"),
    ]
    assert [a["source"] for a in ml["anomalies"]] == ["temp-b"]
    assert ml["anomalies"][0]["model_version"] == "forest-1"
    assert ml["anomalies"][0]["score"] == 0.21
    assert ml["anomalies"][0]["features"] == {"zscore": 7.5}
