"""The shop view in headless Chromium: the API served by uvicorn over an in-memory pipeline
whose shop tables hold what the shop job computed from a few sessions (on the deterministic
driver), and a conversion alert. The page must show the funnel, draw the funnel chart and the
revenue line, list the top products and the alert, and load nothing from elsewhere. The
run's screenshot is saved to artifacts/shop.png."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.sync_api import Page, Request

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.domain.shop_analytics import ConversionRule
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import ApiSettings, Settings
from pipeline.jobs.shop import ShopJobConfig, shop_job
from pipeline.streams.testing import TestDriver
from tests.browser import test_dashboard
from tests.shop_events import a_cart, a_purchase, a_view, commit_rows, job_rows

pytestmark = pytest.mark.browser

ARTIFACTS = test_dashboard.ARTIFACTS
browser = test_dashboard.browser  # the dashboard test's Chromium and page fixtures
page = test_dashboard.page

NOW = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
T0 = NOW - timedelta(minutes=50)
MIN = timedelta(minutes=1)
APPEAR_MS = 10_000


def shop_run() -> TestDriver:
    """Six quarter-hours of sessions: steady conversion, then none (an outage)."""
    rule = ConversionRule(recent_windows=3, min_views=5, min_recent_purchases=2)
    driver = TestDriver(shop_job(ShopJobConfig(topic="ecommerce-events", conversion=rule)), now=NOW)
    for w in range(6):
        start = T0 + w * 5 * MIN
        for i in range(10):
            session = f"w{w}-s{i}"
            driver.send("ecommerce-events", a_view(session, start + MIN))
            if i < 4:
                driver.send("ecommerce-events", a_cart(session, start + 2 * MIN))
            if i < 2 and w < 5:
                currency = "EUR" if i == 0 else "USD"
                line = (f"prod-0000{w + i}", 1 + i, "19.99")
                driver.send(
                    "ecommerce-events",
                    a_purchase(session, start + 3 * MIN, line, currency=currency),
                )
    driver.run()
    driver.advance(timedelta(minutes=1))
    return driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server() -> Iterator[str]:
    """The API over an in-memory pipeline holding the shop job's rows, in a thread."""
    driver = shop_run()
    port = free_port()
    started = threading.Event()
    holder: dict[str, uvicorn.Server] = {}

    async def serve() -> None:
        pipeline = await bootstrap(
            Settings(),
            log=InMemoryEventLog(),
            registry=InMemorySchemaRegistry(),
            store=InMemorySensorStore(),
            clock=ManualClock(NOW),
        )
        await commit_rows(pipeline.checkpoint, job_rows(driver))
        app = create_app(pipeline, ApiSettings(ws_shop_interval_s=0.2))
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
        holder["server"] = uvicorn.Server(config)
        started.set()
        try:
            await holder["server"].serve()
        finally:
            await pipeline.aclose()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(10)
    server = holder["server"]
    for _ in range(100):
        if server.started:
            break
        threading.Event().wait(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_shop_view_shows_the_funnel_revenue_top_products_and_alerts(
    page: Page, server: str
) -> None:
    foreign: list[str] = []
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def on_request(request: Request) -> None:
        if urlsplit(request.url).netloc != urlsplit(server).netloc:
            foreign.append(request.url)

    page.on("request", on_request)
    page.goto(f"{server}/shop")
    try:
        page.wait_for_function(
            "() => document.getElementById('connection').dataset.state === 'open'"
            " && Number(document.getElementById('funnel-chart').dataset.windows) > 0",
            timeout=APPEAR_MS,
        )
        # 60 views, 24 carts, 10 purchases in the hour's closed windows
        assert page.get_by_test_id("views").inner_text() == "60"
        assert page.get_by_test_id("carts").inner_text() == "24"
        assert page.get_by_test_id("purchases").inner_text() == "10"
        assert page.get_by_test_id("conversion").inner_text() == "16.67%"
        assert page.get_by_test_id("funnel-chart").get_attribute("data-windows") == "6"
        revenue = page.get_by_test_id("revenue-chart")
        assert revenue.get_attribute("data-series") == "2"
        assert page.locator("#legend span").all_inner_texts() == ["EUR", "USD"]
        products = page.locator("#top-products li")
        assert products.count() == 6  # prod-00000 … prod-00005
        # 19.99 EUR + 2 × 19.99 USD: 57.01 EUR, ties broken by product id
        assert products.first.get_attribute("data-product") == "prod-00001"
        alerts = page.locator("#alerts li")
        assert alerts.count() == 1
        assert "conversion rate 0.00%" in alerts.first.inner_text()
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "shop.png"), full_page=True)
    assert foreign == []
    assert errors == []
