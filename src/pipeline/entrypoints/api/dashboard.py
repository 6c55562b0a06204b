"""The live dashboard: `/` serves the page, `/static/{name}` its script and style sheet (and
those of the docs page).

The files are package data (`static/`), read once per process. The page draws what the
`/ws/sensors` WebSocket streams; it loads nothing from other origins, and the app's Content
Security Policy (`security`) says so, so it works offline and cannot be made to load anything
from elsewhere."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter

DASHBOARD_PATH = "/"
STATIC_PATH = "/static"

_MEDIA_TYPES = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "docs.js": "text/javascript",
    "docs.css": "text/css",
    "shop.html": "text/html",
    "shop.js": "text/javascript",
}
_ASSETS = frozenset(_MEDIA_TYPES) - {"index.html", "shop.html"}


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One packaged dashboard file with its content type and validator."""

    body: bytes
    media_type: str
    etag: str


@cache
def static_file(name: str) -> StaticFile:
    """The packaged file `name` (one of the dashboard's files), read on first use."""
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return StaticFile(body=body, media_type=_MEDIA_TYPES[name], etag=etag)


def _respond(request: Request[Any, Any, Any], name: str) -> Response[bytes]:
    file = static_file(name)
    # The files are not fingerprinted: browsers revalidate each time (cheap, via the ETag),
    # so a new release is picked up on the next load.
    headers = {"Cache-Control": "no-cache", "ETag": file.etag}
    if request.headers.get("if-none-match") == file.etag:
        return Response(b"", status_code=304, headers=headers, media_type=file.media_type)
    return Response(file.body, headers=headers, media_type=file.media_type)


@get(DASHBOARD_PATH, include_in_schema=False, sync_to_thread=False)
def dashboard_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The dashboard page."""
    return _respond(request, "index.html")


@get(f"{STATIC_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def dashboard_asset(
    request: Request[Any, Any, Any], name: Annotated[str, PathParameter()]
) -> Response[bytes]:
    """The script or style sheet of the dashboard or the docs page; any other name is 404
    (no file system access by path, so no traversal)."""
    if name not in _ASSETS:
        raise NotFoundException(f"no static file {name!r}")
    return _respond(request, name)


@get("/shop", include_in_schema=False, sync_to_thread=False)
def shop_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The shop view (drawn from `/ws/shop`)."""
    return _respond(request, "shop.html")


DASHBOARD_HANDLERS = [dashboard_page, dashboard_asset, shop_page]
"""The route handlers to register on the app."""
