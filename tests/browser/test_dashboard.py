"""The live dashboard in headless Chromium, against `pipeline demo` (the embedded pipeline:
generator → in-memory log → worker → SQLite, the API and `/ws/sensors` in the same process).

Chromium is Debian's (`PIPELINE_CHROMIUM`, else /usr/bin/chromium), driven by Playwright; never
a browser Playwright downloads. Without one the test skips, or fails under
PIPELINE_REQUIRE_SERVICES=1. The run's screenshot is saved to artifacts/dashboard.png."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.demo_process import DemoProcess, running_demo
from tests.services import services_required

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SENSOR_TYPES = ("temperature", "humidity", "pressure")
APPEAR_MS = 10_000
CHART_POINTS = 8 * 3
"""Seconds of data on the chart, over all series, before the screenshot."""


def chromium_path() -> str:
    """The Chromium to drive; skip (or fail, under CI) when there is none."""
    for candidate in (os.environ.get("PIPELINE_CHROMIUM"), *CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = "no Chromium (set PIPELINE_CHROMIUM or apt-get install chromium)"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    # A higher anomaly rate than the default, so an alert within seconds is all but certain.
    with running_demo(tmp_path, ["--duration", "60", "--anomaly-rate", "0.02"]) as demo:
        yield demo


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        yield page
    finally:
        page.close()


@pytest.fixture
def screenshot(page: Page, demo: DemoProcess) -> Iterator[None]:
    """Keep what the page showed at the end of the test (also when it failed), while the
    demo still serves it: a few seconds of every series on the chart when there are."""
    yield
    with contextlib.suppress(PlaywrightError):
        page.wait_for_function(
            f"() => Number(document.getElementById('chart').dataset.points) >= {CHART_POINTS}",
            timeout=APPEAR_MS,
        )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def _count(page: Page, selector: str) -> int:
    return int(page.locator(selector).inner_text())


@pytest.mark.usefixtures("screenshot")
def test_readings_and_an_alert_appear_on_the_live_page(page: Page, demo: DemoProcess) -> None:
    problems: list[str] = []
    foreign: list[str] = []
    origin = urlsplit(demo.url).netloc

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    def on_request(request: Request) -> None:
        if urlsplit(request.url).netloc != origin:
            foreign.append(request.url)

    # Every lag the server sent in a stats frame: the lag tile must show one of them.
    lags_sent: list[object] = []

    def on_frame(payload: str | bytes) -> None:
        frame = json.loads(payload)
        if frame.get("type") == "stats":
            lags_sent.append(frame["lag"])

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", on_request)
    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))

    page.goto(f"{demo.url}/")

    page.wait_for_selector('#connection[data-state="open"]', timeout=APPEAR_MS)
    page.wait_for_function(
        """types => types.every(t => {
             const counter = document.querySelector(`[data-testid="readings-${t}"]`);
             return counter !== null && Number(counter.textContent) > 0;
           })""",
        arg=list(SENSOR_TYPES),
        timeout=APPEAR_MS,
    )
    page.wait_for_function(
        "() => Number(document.getElementById('chart').dataset.points) > 0", timeout=APPEAR_MS
    )
    page.wait_for_selector("#alerts li", timeout=APPEAR_MS)
    page.wait_for_function(
        "() => /^[0-9]+$/.test(document.getElementById('lag').textContent)", timeout=APPEAR_MS
    )

    for sensor_type in SENSOR_TYPES:
        assert _count(page, f'[data-testid="readings-{sensor_type}"]') > 0
    assert page.locator("#chart").get_attribute("data-series") == str(len(SENSOR_TYPES))
    first_alert = page.locator("#alerts li").first
    assert first_alert.get_attribute("data-severity") in {"warning", "critical"}
    assert re.search(r"(WARNING|CRITICAL) \S+", first_alert.inner_text())
    assert _count(page, "#alert-count") >= 1
    assert float(page.locator("#throughput").inner_text().replace(",", "")) > 0
    assert int(page.locator("#lag").inner_text()) in lags_sent
    assert page.locator("#legend [data-type]").count() == len(SENSOR_TYPES)
    assert problems == [], "\n".join(problems)
    assert foreign == []


def test_the_page_shows_a_lost_connection_and_reconnects_to_a_new_server(
    page: Page, tmp_path: Path
) -> None:
    with running_demo(tmp_path / "first", ["--duration", "60"]) as first:
        port = int(first.url.rsplit(":", 1)[1])
        page.goto(f"{first.url}/")
        page.wait_for_selector('#connection[data-state="open"]', timeout=APPEAR_MS)

        first.process.send_signal(signal.SIGINT)
        first.wait(timeout=30)
        page.wait_for_selector('#connection[data-state="closed"]', timeout=APPEAR_MS)
        lost = page.locator("#connection").inner_text()

    with running_demo(tmp_path / "second", ["--duration", "60"], port=port):
        page.wait_for_selector('#connection[data-state="open"]', timeout=3 * APPEAR_MS)

    assert lost.startswith("disconnected")
    assert "retry in" in lost


def test_without_chromium_the_browser_tests_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CANDIDATES", ())
    monkeypatch.delenv("PIPELINE_CHROMIUM", raising=False)
    monkeypatch.delenv("PIPELINE_REQUIRE_SERVICES", raising=False)

    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        chromium_path()


def test_without_chromium_the_browser_tests_fail_when_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CANDIDATES", ())
    monkeypatch.setenv("PIPELINE_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("PIPELINE_REQUIRE_SERVICES", "1")

    with pytest.raises(pytest.fail.Exception, match="no Chromium"):
        chromium_path()


def test_a_bad_filter_in_the_page_url_is_shown_and_not_retried(
    page: Page, demo: DemoProcess
) -> None:
    page.goto(f"{demo.url}/?sensor_type=bogus")

    page.wait_for_selector('#connection[data-state="closed"]', timeout=APPEAR_MS)
    page.wait_for_timeout(1500)  # three times the first backoff: no reconnect happened

    assert page.locator("#connection").get_attribute("data-state") == "closed"
    label = page.locator("#connection").inner_text()
    assert label.startswith("refused (1008")
    assert "bogus" in label


def test_the_social_view_lists_the_trending_hashtags_and_marks_a_burst(
    page: Page, demo: DemoProcess
) -> None:
    # The demo's trending window needs a quarter of an hour of event time before its first
    # hop closes: the page is served the API's answer for a closed hop instead.
    trending = {
        "window_start": "2026-11-30T12:00:00Z",
        "window_end": "2026-11-30T12:15:00Z",
        "tags": [
            {"tag": "jazzvinyl", "count": 40, "score": 27.6, "bursting": True},
            {"tag": "ai", "count": 31, "score": 0.4, "bursting": False},
        ],
    }
    asked: list[str] = []

    def answer(route: Route) -> None:
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(trending))

    page.route("**/api/v1/social/trending*", answer)
    page.goto(f"{demo.url}/")

    page.wait_for_selector("#trending li", timeout=APPEAR_MS)

    items = page.locator("#trending li")
    assert items.count() == 2
    assert items.nth(0).get_attribute("data-tag") == "jazzvinyl"
    assert items.nth(0).get_attribute("data-bursting") == "true"
    assert "#jazzvinyl 40" in items.nth(0).inner_text()
    assert items.nth(1).get_attribute("data-bursting") == "false"
    assert page.locator("#trending-window").inner_text().startswith("15 min to ")
    assert urlsplit(asked[0]).path == "/api/v1/social/trending"


def test_the_social_view_reads_the_real_api_before_any_hop_closed(
    page: Page, demo: DemoProcess
) -> None:
    with page.expect_response("**/api/v1/social/trending*", timeout=APPEAR_MS) as answer:
        page.goto(f"{demo.url}/")
    response = answer.value
    page.wait_for_selector('#connection[data-state="open"]', timeout=APPEAR_MS)

    assert response.status == 200
    assert response.json()["tags"] == []
    assert page.locator("#trending li").count() == 0
    assert page.locator("#trending-window").inner_text() == "no hop closed yet"
