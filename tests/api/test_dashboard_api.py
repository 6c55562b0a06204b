"""The dashboard page at `/` and its static files: served with the right types and cache
headers, and self-contained (nothing loaded from another origin, so it works offline)."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import ApiSettings
from tests.api.conftest import API_KEY_HASH

Client = AsyncTestClient[Litestar]
ASSETS = {"/static/dashboard.js": "text/javascript", "/static/dashboard.css": "text/css"}
SERVED = {**ASSETS, "/static/docs.js": "text/javascript", "/static/docs.css": "text/css"}
"""Every static file: the dashboard's and the docs page's."""
# Anything that would make the browser fetch from elsewhere: absolute or protocol-relative URLs.
EXTERNAL = re.compile(r"https?://|(?:src|href)\s*=\s*[\"']//|url\(\s*[\"']?//|@import", re.I)


async def test_the_root_serves_the_dashboard_page(client: Client) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for element in ('id="chart"', 'id="alerts"', 'id="throughput"', 'id="lag"'):
        assert element in response.text


async def test_the_page_references_only_its_own_static_files(client: Client) -> None:
    page = (await client.get("/")).text

    references = re.findall(r"""(?:src|href)="([^"]+)\"""", page)

    assert sorted(r for r in references if r.startswith("/static/")) == sorted(ASSETS)
    # Same-origin paths, or the inline empty icon (no /favicon.ico request).
    assert all((r.startswith("/") and not r.startswith("//")) or r == "data:," for r in references)


@pytest.mark.parametrize(("path", "media_type"), SERVED.items())
async def test_the_static_assets_are_served_with_their_content_type(
    client: Client, path: str, media_type: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content


@pytest.mark.parametrize("path", ["/", *SERVED])
async def test_nothing_the_dashboard_serves_points_to_another_origin(
    client: Client, path: str
) -> None:
    body = (await client.get(path)).text

    assert EXTERNAL.search(body) is None


async def test_the_page_forbids_loading_from_other_origins(client: Client) -> None:
    policy = (await client.get("/")).headers["content-security-policy"]

    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy


@pytest.mark.parametrize("path", ["/", *SERVED])
async def test_an_unchanged_file_is_revalidated_with_its_etag(client: Client, path: str) -> None:
    first = await client.get(path)

    again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})

    assert first.headers["cache-control"] == "no-cache"
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "path", ["/static/nope.js", "/static/index.html", "/static/..%2Fapp.py", "/static/%2e%2e"]
)
async def test_other_static_names_are_not_found(client: Client, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404


async def test_the_dashboard_is_not_part_of_the_openapi_document(client: Client) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert "/" not in paths
    assert not any(p.startswith("/static") for p in paths)


async def test_the_page_needs_no_api_key_even_when_reads_do(pipeline: Pipeline) -> None:
    settings = ApiSettings(api_key_hashes=[API_KEY_HASH], require_key_for_reads=True)

    async with AsyncTestClient(create_app(pipeline, settings)) as client:
        page = await client.get("/")
        script = await client.get("/static/dashboard.js")
        data = await client.get("/api/v1/sensors/latest")

    # The page holds no data: the WebSocket it opens (with ?api_key=…) is what the key guards.
    assert (page.status_code, script.status_code) == (200, 200)
    assert data.status_code == 401
