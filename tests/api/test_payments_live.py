"""The live view streams payments alerts: `/ws/sensors?domain=payments` (or a subscribe
message with `domains`) gets the fraud alerts and nothing of the other streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from litestar import Litestar

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, Alert, check_thresholds
from pipeline.domain.fraud import FlaggedTransaction, FraudRule, fraud_alert
from pipeline.domain.payments import Channel
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import ApiSettings, Settings
from tests.api.conftest import reading
from tests.api.websockets import AsgiWebSocket, WebSocketClosed, running

PATH = "/ws/sensors"


@pytest.fixture
async def pipeline(store: InMemorySensorStore, clock: ManualClock) -> AsyncIterator[Pipeline]:
    pipeline = await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
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


def a_fraud_alert(clock: ManualClock) -> Alert:
    return fraud_alert(
        FlaggedTransaction(
            transaction_id="tx1-77",
            account_id="acct-000042",
            amount=Decimal("1.50"),
            currency="EUR",
            merchant="digital_goods-us-003",
            country="US",
            channel=Channel.ONLINE,
            timestamp=clock.now() - timedelta(seconds=5),
            reasons=(FraudRule.CARD_TESTING,),
            score=0.9,
        )
    )


async def publish(pipeline: Pipeline, alert: Alert) -> None:
    await pipeline.log.publish(
        pipeline.settings.topics.system_alerts,
        alert.source.encode(),
        await pipeline.alert_codec.encode(alert),
    )


async def first_event(ws: AsgiWebSocket) -> dict[str, Any]:
    frame = await ws.receive_json()
    while frame["type"] in ("stats", "heartbeat"):
        frame = await ws.receive_json()
    return frame


async def test_a_payments_filter_gets_fraud_alerts_with_reasons_and_nothing_else(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    sensor_alert = check_thresholds(reading(clock.now(), value=80.0), DEFAULT_THRESHOLDS)
    assert sensor_alert is not None
    fraud = a_fraud_alert(clock)
    async with AsgiWebSocket(live, PATH, {"domain": "payments"}) as ws:
        subscribed = await ws.receive_json()
        await live.state.live_feed.reading.wait()
        await publish(pipeline, sensor_alert)
        await pipeline.log.publish(
            pipeline.settings.topics.sensor_readings,
            b"temp-0001",
            await pipeline.reading_codec.encode(reading(clock.now())),
        )
        await publish(pipeline, fraud)

        frame = await first_event(ws)

    assert subscribed["filter"]["domains"] == ["payments"]
    assert frame["type"] == "alert"
    assert frame["alert_id"] == str(fraud.alert_id)
    assert (frame["domain"], frame["kind"], frame["reasons"]) == (
        "payments",
        "fraud",
        ["card_testing"],
    )


async def test_a_subscribe_message_can_choose_the_payments_stream(
    live: Litestar, pipeline: Pipeline, clock: ManualClock
) -> None:
    async with AsgiWebSocket(live, PATH) as ws:
        await ws.receive_json()
        await ws.send_json({"type": "subscribe", "domains": ["payments"], "alerts_only": True})
        subscribed = await first_event(ws)

    assert subscribed["type"] == "subscribed"
    assert subscribed["filter"]["domains"] == ["payments"]


async def test_an_unknown_stream_closes_the_connection_with_1008(live: Litestar) -> None:
    async with AsgiWebSocket(live, PATH, {"domain": "crypto"}) as ws:
        with pytest.raises(WebSocketClosed) as closed:
            await ws.receive_json()

    assert closed.value.code == 1008
    assert "crypto" in closed.value.reason
