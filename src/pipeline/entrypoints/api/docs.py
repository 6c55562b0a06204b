"""An interactive API page that works offline.

Litestar's bundled OpenAPI pages (Swagger UI, ReDoc, Scalar, RapiDoc, Stoplight) all load
their JavaScript and CSS from CDNs, so they are blank on a machine without internet access.
This page loads only its own script and style sheet from this origin (`/static/docs.js`,
`/static/docs.css`; the Content-Security-Policy allows nothing else, inline scripts
included): the script reads the OpenAPI document and lists every operation with its
parameters and a form that sends the request and shows the response."""

from __future__ import annotations

from importlib import resources
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin


def docs_page(spec_url: str) -> bytes:
    """The docs page (docs.html), reading the OpenAPI document from `spec_url`."""
    page = resources.files(__package__).joinpath("docs.html").read_text(encoding="utf-8")
    return page.replace("__SPEC__", spec_url).encode()


class OfflineDocsRenderPlugin(OpenAPIRenderPlugin):
    """Serves the self-contained docs page (no CDN) for Litestar's OpenAPI router."""

    def __init__(self, *, path: str = "/docs", spec_url: str = "/openapi.json") -> None:
        super().__init__(path=path)
        self._spec_url = spec_url

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page; its script fetches the OpenAPI document itself."""
        return docs_page(self._spec_url)
