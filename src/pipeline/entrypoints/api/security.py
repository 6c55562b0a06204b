"""Security headers on every HTTP response, and cross-origin access (CORS) as a setting.

Every response — the REST API, `/health`, `/ready`, `/openapi.json`, `/docs`, the dashboard,
errors and 404s included — carries a Content-Security-Policy that allows only this origin
(so the pages work offline and cannot be made to load anything from elsewhere), forbids
framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), turns off content sniffing and
sends no `Referer` (the dashboard's own URL may carry an API key). A response that sets one
of these headers itself keeps its own."""

from __future__ import annotations

from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from pipeline.entrypoints.api.auth import API_KEY_HEADER

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    # 'self' covers the page's own ws:/wss: endpoint (CSP level 3).
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


async def add_security_headers(message: Message, scope: Scope) -> None:
    """A `before_send` hook: the security headers on every HTTP response start."""
    if message["type"] != "http.response.start":
        return  # a body chunk, or a WebSocket frame
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value


def cors_config(origins: list[str]) -> CORSConfig | None:
    """Cross-origin access for pages served from `origins` (none: browsers keep other
    origins out, the default): the read endpoints and acknowledging, with the API key
    header; no cookies (the API does not use them)."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=[API_KEY_HEADER, "Content-Type"],
        allow_credentials=False,
        max_age=600,
    )
