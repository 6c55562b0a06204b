"""The API docs page (`/docs`) in headless Chromium under the app's Content-Security-Policy
(only this origin's scripts and styles, no inline ones): it lists the operations of the
OpenAPI document and its forms send requests, with no console error (a CSP violation is
one) and no request to another origin."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request

from tests.browser.test_dashboard import APPEAR_MS, browser, demo, page  # noqa: F401 - fixtures
from tests.demo_process import DemoProcess

pytestmark = pytest.mark.browser


def test_the_docs_page_lists_the_operations_and_sends_requests(
    page: Page,  # noqa: F811 - the imported fixture
    demo: DemoProcess,  # noqa: F811 - the imported fixture
) -> None:
    problems: list[str] = []
    foreign: list[str] = []
    origin = urlsplit(demo.url).netloc

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    def on_request(request: Request) -> None:
        if urlsplit(request.url).netloc != origin:
            foreign.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", on_request)

    response = page.goto(f"{demo.url}/docs")
    page.wait_for_selector(".op", timeout=APPEAR_MS)
    health = page.locator(".op", has=page.locator("code", has_text="/health")).first
    health.get_by_role("button", name="Send").click()
    answer = health.locator("pre")
    answer.wait_for(state="visible", timeout=APPEAR_MS)

    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator(".op").count() >= 8
    assert answer.inner_text().startswith("200")
    assert '"status": "ok"' in answer.inner_text()
    assert problems == [], "\n".join(problems)
    assert foreign == []
