"""The API's request spans (with tracing on): Litestar's OpenTelemetry plugin, each span
named by its method and route template once the request is routed."""

from __future__ import annotations

from typing import Any

from litestar.config.app import AppConfig
from litestar.enums import ScopeType
from litestar.plugins import InitPlugin, PluginProtocol
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry import trace

from pipeline.application.ports.tracing import Tracing


def request_tracing(tracing: Tracing) -> list[PluginProtocol]:
    """With tracing on, a server span per HTTP request, continuing a caller's W3C
    `traceparent`, named `GET /api/v1/sensors/{sensor_id}/aggregates` (a URL no route
    matches is just `GET`, so a scan adds no span names). WebSockets are left out: a
    live-view client stays connected for hours, which is no span."""
    from pipeline.adapters.telemetry.tracing import OtelTracing  # noqa: PLC0415

    if not isinstance(tracing, OtelTracing):
        return []
    from litestar.plugins.opentelemetry import (  # noqa: PLC0415
        OpenTelemetryConfig,
        OpenTelemetryPlugin,
    )

    config = OpenTelemetryConfig(
        tracer_provider=tracing.provider,
        exclude_spans=["receive", "send"],
        scopes={ScopeType.HTTP},
        scope_span_details_extractor=_method_only,
    )
    return [OpenTelemetryPlugin(config), _RouteSpanNames()]


def _method_only(scope: Scope) -> tuple[str, dict[str, Any]]:
    return str(scope.get("method", "HTTP")), {}


class _RouteSpanNames(InitPlugin):
    """Renames the request's span after its route, once routed (Litestar runs middleware
    per route handler, inside the plugin's span)."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(_name_span_by_route)
        return app_config


def _name_span_by_route(app: ASGIApp) -> ASGIApp:
    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        route = scope.get("path_template")
        if route and span.is_recording():
            span.update_name(f"{scope.get('method', 'HTTP')} {route}")
            span.set_attribute("http.route", route)
        await app(scope, receive, send)

    return named
