"""The payments view (`/payments`) in headless Chromium: per-rule counts and flagged
transactions from `/api/v1/payments`, fraud alerts live from `/ws/sensors?domain=payments`.

The app is served by uvicorn on a free port, on the in-memory pipeline, in a thread of the
test: its payments tables hold a few flagged transactions (written through the job's
declared sinks), and a fraud alert is published on its alerts topic every half second, with
a sensor alert the view must not show."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.sync_api import Page

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.adapters.memory.checkpoint import Undo
from pipeline.adapters.memory.table_sinks import memory_table_sinks
from pipeline.adapters.sql.payment_sinks import PAYMENT_SINKS
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, check_thresholds
from pipeline.domain.fraud import FlaggedTransaction, FraudRule, flag_reasons, fraud_alert
from pipeline.domain.payments import Channel
from pipeline.domain.sensors import Reading
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import ApiSettings, Settings
from tests.browser.test_dashboard import APPEAR_MS, browser, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
T0 = datetime(2026, 11, 30, 3, tzinfo=UTC)


def flagged(n: int, *reasons: FraudRule) -> FlaggedTransaction:
    return FlaggedTransaction(
        transaction_id=f"tx1-{n}",
        account_id=f"acct-{n:06d}",
        amount=Decimal("1.50"),
        currency="EUR",
        merchant="digital_goods-us-003",
        country="US",
        channel=Channel.ONLINE,
        timestamp=T0 + timedelta(seconds=n),
        reasons=reasons,
        score=0.9,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _serve(
    port: int, stop: threading.Event, ready: threading.Event, api: ApiSettings
) -> None:
    store = InMemorySensorStore()
    pipeline = await bootstrap(
        Settings(), log=InMemoryEventLog(), registry=InMemorySchemaRegistry(), store=store
    )
    await pipeline.ensure_topics()
    rows = [flagged(1, FraudRule.VELOCITY), flagged(2, FraudRule.CARD_TESTING, FraudRule.VELOCITY)]
    sinks = memory_table_sinks(PAYMENT_SINKS, store.declared)
    undo: Undo = []
    sinks["flagged_transactions"].write(rows, [None] * 2, undo)
    reasons = [r for f in rows for r in flag_reasons(f)]
    sinks["fraud_flag_reasons"].write(reasons, [None] * len(reasons), undo)
    app = create_app(pipeline, api)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    topic = pipeline.settings.topics.system_alerts
    hot = Reading(
        sensor_id="temp-1",
        sensor_type="temperature",
        value=90.0,
        unit="celsius",
        timestamp=T0,
        location="site-01",
    )
    sensor_alert = check_thresholds(hot, DEFAULT_THRESHOLDS)
    assert sensor_alert is not None
    n = 100
    while not server.started:
        await asyncio.sleep(0.05)
    ready.set()
    while not stop.is_set():
        n += 1
        fraud = fraud_alert(flagged(n, FraudRule.IMPOSSIBLE_TRAVEL))
        await pipeline.log.publish(
            topic, b"temp-1", await pipeline.alert_codec.encode(sensor_alert)
        )
        await pipeline.log.publish(topic, b"acct", await pipeline.alert_codec.encode(fraud))
        await asyncio.sleep(0.5)
    server.should_exit = True
    await serving
    await pipeline.aclose()


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings()


@pytest.fixture
def served(api_settings: ApiSettings) -> Iterator[str]:
    port = _free_port()
    stop, ready = threading.Event(), threading.Event()
    serve = _serve(port, stop, ready, api_settings)
    thread = threading.Thread(target=asyncio.run, args=(serve,), daemon=True)
    thread.start()
    assert ready.wait(30), "the app did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(30)


def test_the_payments_view_shows_rule_counts_flagged_transactions_and_live_fraud_alerts(
    page: Page,  # noqa: F811 - the dashboard test's fixture
    served: str,
) -> None:
    problems: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "request",
        lambda r: (
            foreign.append(r.url) if urlsplit(r.url).netloc != urlsplit(served).netloc else None
        ),
    )

    page.goto(f"{served}/payments")

    page.wait_for_selector('#connection[data-state="open"]', timeout=APPEAR_MS)
    page.wait_for_selector("#alerts li", timeout=APPEAR_MS)
    page.wait_for_function(
        "() => document.getElementById('rule-velocity').textContent === '2'", timeout=APPEAR_MS
    )

    assert page.locator('[data-testid="rule-card_testing"]').inner_text() == "1"
    assert page.locator('[data-testid="rule-amount_spike"]').inner_text() == "0"
    assert page.locator("#flagged li").count() == 2
    assert "card_testing, velocity" in page.locator("#flagged li").first.inner_text()
    alerts = page.locator("#alerts li").all_inner_texts()
    assert alerts
    assert all("impossible_travel" in text for text in alerts)
    assert not any("temperature" in text for text in alerts)
    assert problems == []
    assert foreign == []


KEY = "payments-view-key"


@pytest.mark.parametrize(
    "api_settings",
    [
        ApiSettings(
            api_key_hashes=[hashlib.sha256(KEY.encode()).hexdigest()], require_key_for_reads=True
        )
    ],
)
def test_the_payments_view_passes_its_api_key_when_reads_need_one(
    page: Page,  # noqa: F811 - the dashboard test's fixture
    served: str,
) -> None:
    page.goto(f"{served}/payments?api_key={KEY}")

    page.wait_for_selector('#connection[data-state="open"]', timeout=APPEAR_MS)
    page.wait_for_selector("#alerts li", timeout=APPEAR_MS)
    page.wait_for_function(
        "() => document.getElementById('rule-velocity').textContent === '2'", timeout=APPEAR_MS
    )

    assert page.locator("#flagged li").count() == 2
