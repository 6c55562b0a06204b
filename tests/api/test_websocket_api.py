"""`/ws/sensors`: the live view streams readings, alerts and stats over a WebSocket, from one
reader per process, filtered per client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar import Litestar

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.adapters.sql.migrate import upgrade
from pipeline.application.live_feed import LiveFeed
from pipeline.application.ports import EventConsumer
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, Alert, check_thresholds
from pipeline.domain.sensors import Reading
from pipeline.domain.social import TagHop, trending_alert
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.api.server import app_for
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import (
    ApiSettings,
    DatabaseSettings,
    KafkaSettings,
    RegistrySettings,
    Settings,
)
from tests.api.conftest import API_KEY, reading
from tests.api.websockets import AsgiWebSocket, WebSocketClosed, running

PATH = "/ws/sensors"


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    # A test that ran an entrypoint may have left structlog writing to a capture file pytest
    # has since closed; the feed logs, so give it the defaults.
    structlog.reset_defaults()


class CountingEventLog(InMemoryEventLog):
    """The in-memory log, counting the readers opened on it."""

    def __init__(self) -> None:
        super().__init__()
        self.readers = 0

    def reader(self, *, group_id: str, start: Any) -> EventConsumer:
        self.readers += 1
        return super().reader(group_id=group_id, start=start)


@pytest.fixture
async def pipeline(store: InMemorySensorStore, clock: ManualClock) -> AsyncIterator[Pipeline]:
    pipeline = await bootstrap(
        Settings(),
        log=CountingEventLog(),
        registry=InMemorySchemaRegistry(),
        store=store,
        clock=clock,
    )
    await pipeline.ensure_topics()
    yield pipeline
    await pipeline.aclose()


@pytest.fixture
async def live(pipeline: Pipeline, api_settings: ApiSettings) -> AsyncIterator[Litestar]:
    async for app in running(create_app(pipeline, api_settings)):
        yield app


def feed_of(app: Litestar) -> LiveFeed:
    feed: LiveFeed = app.state.live_feed
    return feed


async def connected(app: Litestar, ws: AsgiWebSocket) -> dict[str, Any]:
    """The `subscribed` frame, once the feed reads (what is published after it arrives)."""
    frame = await ws.receive_json()
    await asyncio.wait_for(feed_of(app).reading.wait(), 5)
    return frame


async def publish_readings(pipeline: Pipeline, *readings: Reading) -> None:
    for r in readings:
        await pipeline.log.publish(
            pipeline.settings.topics.sensor_readings,
            r.sensor_id.encode(),
            await pipeline.reading_codec.encode(r),
        )


async def publish_alert(pipeline: Pipeline, alert: Alert) -> None:
    await pipeline.log.publish(
        pipeline.settings.topics.system_alerts,
        alert.source.encode(),
        await pipeline.alert_codec.encode(alert),
    )


def hot_alert(clock: ManualClock) -> Alert:
    alert = check_thresholds(
        reading(clock.now() - timedelta(seconds=5), sensor="temp-0009", value=80.0),
        DEFAULT_THRESHOLDS,
    )
    assert alert is not None
    return alert


async def test_a_reading_produced_after_connect_arrives_as_a_reading_frame(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    taken = clock.now() - timedelta(seconds=1)
    async with AsgiWebSocket(live, PATH) as ws:
        subscribed = await connected(live, ws)
        await publish_readings(pipeline, reading(taken, sensor="temp-0001", value=21.5))

        frame = await ws.receive_until("reading")

    assert subscribed == {
        "type": "subscribed",
        "filter": {
            "sensor_types": None,
            "sensor_ids": None,
            "alerts_only": False,
            "domains": None,
        },
    }
    assert frame == {
        "type": "reading",
        "sensor_id": "temp-0001",
        "sensor_type": "temperature",
        "value": 21.5,
        "unit": "celsius",
        "time": taken.isoformat().replace("+00:00", "Z"),
        "location": "site-01/floor-1",
        "battery_level": None,
        "signal_strength": None,
    }


async def test_an_alert_on_the_alerts_topic_arrives_as_an_alert_frame(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    alert = hot_alert(clock)
    async with AsgiWebSocket(live, PATH) as ws:
        await connected(live, ws)
        await publish_alert(pipeline, alert)

        frame = await ws.receive_until("alert")

    assert frame == {
        "type": "alert",
        "alert_id": str(alert.alert_id),
        "sensor_id": "temp-0009",
        "source": "temp-0009",
        "kind": "threshold_high",
        "domain": "sensors",
        "detector": "threshold",
        "sensor_type": "temperature",
        "severity": "critical",
        "message": alert.message,
        "value": 80.0,
        "threshold": 70.0,
        "score": None,
        "reasons": [],
        "model_version": None,
        "time": alert.timestamp.isoformat().replace("+00:00", "Z"),
    }


async def test_invalid_and_undecodable_readings_are_skipped(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    now = clock.now()
    async with AsgiWebSocket(live, PATH) as ws:
        await connected(live, ws)
        topic = pipeline.settings.topics.sensor_readings
        await pipeline.log.publish(topic, b"junk", b"not avro")
        await publish_readings(
            pipeline,
            reading(now, sensor="bad-1", value=5000.0),  # beyond the physical range
            reading(now, sensor="good-1"),
        )

        frame = await ws.receive_until("reading")

    assert frame["sensor_id"] == "good-1"


async def test_query_filters_by_sensor_type_and_id(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    now = clock.now()
    params = {"sensor_type": "humidity,pressure", "sensor_id": ["hum-1", "pres-1"]}
    async with AsgiWebSocket(live, PATH, params) as ws:
        subscribed = await connected(live, ws)
        await publish_readings(
            pipeline,
            reading(now, sensor="temp-1"),
            reading(now, sensor="hum-2", sensor_type="humidity", value=50.0),
            reading(now, sensor="hum-1", sensor_type="humidity", value=50.0),
        )

        frame = await ws.receive_until("reading")

    assert subscribed["filter"] == {
        "sensor_types": ["humidity", "pressure"],
        "sensor_ids": ["hum-1", "pres-1"],
        "alerts_only": False,
        "domains": None,
    }
    assert frame["sensor_id"] == "hum-1"


async def test_a_domain_filter_gets_that_streams_alerts_only(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    hop_end = clock.now().replace(microsecond=0)
    trending = trending_alert(
        TagHop(tag="jazzvinyl", window_start=hop_end - timedelta(minutes=15), window_end=hop_end,
               count=40, baseline=1.0, score=27.6, bursting=True, burst_start=True)
    )  # fmt: skip
    async with AsgiWebSocket(live, PATH, {"domain": "social"}) as ws:
        subscribed = await connected(live, ws)
        await publish_readings(pipeline, reading(clock.now(), sensor="temp-1"))
        await publish_alert(pipeline, hot_alert(clock))
        await publish_alert(pipeline, trending)

        frame = await ws.receive_json()
        while frame["type"] == "stats":
            frame = await ws.receive_json()

    assert subscribed["filter"]["domains"] == ["social"]
    assert (frame["type"], frame["alert_id"]) == ("alert", str(trending.alert_id))
    assert (frame["domain"], frame["kind"], frame["source"]) == ("social", "trending", "jazzvinyl")


async def test_alerts_only_gets_alerts_and_no_readings(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    alert = hot_alert(clock)
    async with AsgiWebSocket(live, PATH, {"alerts_only": "true"}) as ws:
        await connected(live, ws)
        await publish_readings(pipeline, reading(clock.now(), sensor="temp-1"))
        await publish_alert(pipeline, alert)

        frame = await ws.receive_json()
        while frame["type"] == "stats":
            frame = await ws.receive_json()

    assert frame["type"] == "alert"
    assert frame["alert_id"] == str(alert.alert_id)


async def test_a_subscribe_message_replaces_the_filter(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    now = clock.now()
    async with AsgiWebSocket(live, PATH, {"sensor_type": "humidity"}) as ws:
        await connected(live, ws)
        await ws.send_json({"type": "subscribe", "sensor_types": ["pressure"]})
        subscribed = await ws.receive_until("subscribed")
        await publish_readings(
            pipeline,
            reading(now, sensor="hum-1", sensor_type="humidity", value=50.0),
            reading(now, sensor="pres-1", sensor_type="pressure", value=1000.0),
        )

        frame = await ws.receive_until("reading")

    assert subscribed["filter"]["sensor_types"] == ["pressure"]
    assert frame["sensor_id"] == "pres-1"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "subscribe", "sensor_types": ["plasma"]},
        {"type": "subscribe", "sensor_ids": "temp-1"},
        {"type": "subscribe", "alerts_only": "yes"},
        {"type": "subscribe", "sensor_type": ["temperature"]},
        {"type": "subscribe", "sensor_ids": ["x" * 201]},
    ],
)
async def test_a_bad_subscribe_gets_an_error_frame_and_the_connection_stays_usable(
    live: Litestar, message: dict[str, Any]
) -> None:
    async with AsgiWebSocket(live, PATH) as ws:
        await ws.receive_json()
        await ws.send_json(message)
        error = await ws.receive_until("error")
        await ws.send_json({"type": "ping"})
        pong = await ws.receive_until("pong")

    assert error["error"] == "bad_subscribe"
    assert error["detail"]
    assert pong == {"type": "pong"}


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"type": "dance"}'])
async def test_a_message_that_is_not_a_command_gets_a_bad_message_error(
    live: Litestar, text: str
) -> None:
    async with AsgiWebSocket(live, PATH) as ws:
        await ws.receive_json()
        await ws.send_text(text)
        error = await ws.receive_until("error")

    assert error["error"] == "bad_message"


async def test_a_binary_message_gets_a_bad_message_error(live: Litestar) -> None:
    async with AsgiWebSocket(live, PATH) as ws:
        await ws.receive_json()
        await ws.send_bytes(b"\x00\x01")
        error = await ws.receive_until("error")

    assert error["error"] == "bad_message"


@pytest.mark.parametrize(
    "params",
    [
        {"sensor_type": "plasma"},
        {"alerts_only": "maybe"},
        {"sensor_id": "x" * 201},
        {"alerts_only": ["true", "false"]},
    ],
)
async def test_a_bad_query_filter_closes_the_connection_with_1008(
    live: Litestar, params: dict[str, Any]
) -> None:
    async with AsgiWebSocket(live, PATH, params) as ws:
        with pytest.raises(WebSocketClosed) as closed:
            await ws.receive_json()

    assert closed.value.code == 1008
    assert closed.value.reason


async def test_heartbeats_come_at_the_configured_interval(
    pipeline: Pipeline, api_settings: ApiSettings
) -> None:
    settings = api_settings.model_copy(update={"ws_heartbeat_s": 0.05})
    async for app in running(create_app(pipeline, settings)):
        async with AsgiWebSocket(app, PATH) as ws:
            await ws.receive_json()
            first = await ws.receive_until("heartbeat", timeout=1)
            second = await ws.receive_until("heartbeat", timeout=1)

    assert set(first) == {"type", "time"}
    assert second["type"] == "heartbeat"


async def test_stats_reach_every_client_whatever_its_filter(live: Litestar) -> None:
    async with AsgiWebSocket(live, PATH, {"alerts_only": "true"}) as ws:
        await ws.receive_json()
        stats = await ws.receive_until("stats", timeout=3)

    assert stats["type"] == "stats"
    assert stats["clients"] == 1
    assert stats["readings_per_second"] == 0.0
    assert stats["dropped"] == 0
    assert "lag" in stats
    assert "time" in stats


async def test_stats_report_the_sensors_group_lag(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    async with AsgiWebSocket(live, PATH, {"alerts_only": "true"}) as ws:
        await connected(live, ws)
        await publish_readings(pipeline, reading(clock.now()), reading(clock.now(), sensor="t2"))
        stats = await ws.receive_until("stats", timeout=3)
        while stats["lag"] != 2:
            stats = await ws.receive_until("stats", timeout=3)

    assert stats["lag"] == 2  # nothing stored for pipeline-sensors yet


async def test_several_clients_share_one_reader(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    log = pipeline.log
    assert isinstance(log, CountingEventLog)
    async with AsgiWebSocket(live, PATH) as first, AsgiWebSocket(live, PATH) as second:
        await connected(live, first)
        await connected(live, second)
        async with AsgiWebSocket(live, PATH) as third:
            await connected(live, third)
            await publish_readings(pipeline, reading(clock.now(), sensor="shared-1"))

            frames = [await ws.receive_until("reading") for ws in (first, second, third)]

    assert [f["sensor_id"] for f in frames] == ["shared-1"] * 3
    assert log.readers == 1
    assert feed_of(live).readers_opened == 1


async def test_a_client_whose_queue_overflows_is_told_how_many_messages_it_lost(
    pipeline: Pipeline, api_settings: ApiSettings, clock: ManualClock
) -> None:
    settings = api_settings.model_copy(update={"ws_queue_size": 1})
    topic = pipeline.settings.topics.sensor_readings
    payloads = [
        await pipeline.reading_codec.encode(reading(clock.now(), sensor=f"burst-{i}"))
        for i in range(20)
    ]
    async for app in running(create_app(pipeline, settings)):
        async with AsgiWebSocket(app, PATH) as ws:
            await connected(app, ws)
            # One burst, published without yielding: the feed hands it to the hub at once.
            for payload in payloads:
                await pipeline.log.publish(topic, None, payload)

            first = await ws.receive_until("reading")
            dropped = await ws.receive_until("dropped")

    assert first["sensor_id"].startswith("burst-")
    assert dropped == {"type": "dropped", "count": 19, "total": 19}


async def test_clients_past_the_cap_are_refused_with_1013_and_a_reason(
    pipeline: Pipeline, api_settings: ApiSettings
) -> None:
    settings = api_settings.model_copy(update={"ws_max_clients": 2})
    async for app in running(create_app(pipeline, settings)):
        async with AsgiWebSocket(app, PATH) as first, AsgiWebSocket(app, PATH) as second:
            await first.receive_json()
            await second.receive_json()
            async with AsgiWebSocket(app, PATH) as third:
                with pytest.raises(WebSocketClosed) as refused:
                    await third.receive_json()
        # A place is free again once a client has left.
        async with AsgiWebSocket(app, PATH) as later:
            welcome = await later.receive_json()

    assert refused.value.code == 1013
    assert "at most 2 live clients" in refused.value.reason
    assert welcome["type"] == "subscribed"


async def test_an_internal_error_closes_the_connection_with_1011(
    live: Litestar, pipeline: Pipeline, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(event: object) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr("pipeline.entrypoints.api.live_frames.frame_of", broken)
    async with AsgiWebSocket(live, PATH) as ws:
        await connected(live, ws)
        await publish_readings(pipeline, reading(clock.now()))

        with pytest.raises(WebSocketClosed) as closed:
            await ws.receive_until("reading")

    assert closed.value.code == 1011
    assert feed_of(live).hub.clients == 0


async def test_shutting_the_app_down_closes_live_connections_with_1001(
    pipeline: Pipeline, api_settings: ApiSettings
) -> None:
    app = create_app(pipeline, api_settings)
    async with app.lifespan():
        ws = AsgiWebSocket(app, PATH)
        await ws.__aenter__()
        await connected(app, ws)
    # The lifespan has ended: the feed closed the subscription.
    with pytest.raises(WebSocketClosed) as closed:
        await ws.receive_until("never")
    await ws.__aexit__(None, None, None)

    assert closed.value.code in {1000, 1001}
    assert not feed_of(app).running


async def test_the_feed_waits_for_its_topics(
    store: InMemorySensorStore, clock: ManualClock, api_settings: ApiSettings
) -> None:
    pipeline = await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=store,
        clock=clock,
    )
    try:
        async for app in running(create_app(pipeline, api_settings)):
            async with AsgiWebSocket(app, PATH) as ws:
                await ws.receive_json()
                await asyncio.sleep(0.3)
                assert not feed_of(app).reading.is_set()
                await pipeline.ensure_topics()
                await asyncio.wait_for(feed_of(app).reading.wait(), 5)
                await publish_readings(pipeline, reading(clock.now(), sensor="late-1"))

                frame = await ws.receive_until("reading")
    finally:
        await pipeline.aclose()

    assert frame["sensor_id"] == "late-1"


class TestApiKey:
    @pytest.fixture
    def api_settings(self, api_settings: ApiSettings) -> ApiSettings:
        return api_settings.model_copy(update={"require_key_for_reads": True})

    async def test_without_a_key_the_connection_is_refused(self, live: Litestar) -> None:
        with pytest.raises(WebSocketClosed) as closed:
            async with AsgiWebSocket(live, PATH):
                pass

        assert not closed.value.accepted
        assert closed.value.code == 4401

    async def test_a_key_in_the_query_is_accepted(self, live: Litestar) -> None:
        async with AsgiWebSocket(live, PATH, {"api_key": API_KEY}) as ws:
            frame = await ws.receive_json()

        assert frame["type"] == "subscribed"

    async def test_a_key_in_the_header_is_accepted(self, live: Litestar) -> None:
        async with AsgiWebSocket(live, PATH, headers={"X-API-Key": API_KEY}) as ws:
            frame = await ws.receive_json()

        assert frame["type"] == "subscribed"

    async def test_a_wrong_key_is_refused(self, live: Litestar) -> None:
        with pytest.raises(WebSocketClosed) as closed:
            async with AsgiWebSocket(live, PATH, {"api_key": "wrong"}):
                pass

        assert closed.value.code == 4401


async def test_the_served_app_has_the_live_view_too(tmp_path: Path) -> None:
    settings = Settings(
        kafka=KafkaSettings(),
        registry=RegistrySettings(),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/api.db"),
    )
    await asyncio.to_thread(upgrade, settings.database.url.get_secret_value())
    async for app in running(app_for(settings)):
        pipeline: Pipeline = app.state.pipeline
        await pipeline.ensure_topics()
        async with AsgiWebSocket(app, PATH) as ws:
            await connected(app, ws)
            await publish_readings(pipeline, reading(pipeline.clock.now() - timedelta(seconds=1)))

            frame = await ws.receive_until("reading")

    assert frame["sensor_id"] == "temp-0001"
