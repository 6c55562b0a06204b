"""`/metrics`: the API process's Prometheus metrics (request durations by route and status,
live-view clients and dropped frames, process CPU and memory), in the text exposition
format. Documented in the OpenAPI document like every other route."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import REGISTRY, generate_latest

from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry
from pipeline.entrypoints.bootstrap import Pipeline

MEDIA_TYPE = "text/plain; version=0.0.4"
"""Prometheus' text exposition format, which every Prometheus server reads (Litestar adds
the charset, utf-8)."""


def request_metrics() -> DefineMiddleware:
    """Litestar's Prometheus middleware: `pipeline_api_requests_total`,
    `pipeline_api_request_duration_seconds` and `pipeline_api_requests_in_progress` by
    method, route template (`path`) and status code. Requests no route matches are not
    counted, so a scan of random URLs cannot add series."""
    return PrometheusConfig(
        app_name="pipeline",
        prefix="pipeline_api",
        group_path=True,
        scopes={ScopeType.HTTP},
    ).middleware


@get(
    "/metrics",
    summary="Prometheus metrics",
    tags=["health"],
    media_type=MEDIA_TYPE,
    sync_to_thread=False,
)
def metrics(
    request: Request[Any, Any, Any], pipeline: NamedDependency[Pipeline]
) -> Response[bytes]:
    """This API process's metrics in Prometheus' text exposition format (version 0.0.4):
    request durations by route and status, live-view clients and dropped frames, process
    CPU and memory. With several server processes (`PIPELINE_API__WORKERS`), each answers
    with its own."""
    telemetry = pipeline.telemetry
    feed = getattr(request.app.state, "live_feed", None)
    if feed is not None:
        telemetry.live_view(clients=feed.hub.clients, dropped_total=feed.hub.dropped)
    body = (
        telemetry.render()
        if isinstance(telemetry, PrometheusTelemetry)
        else generate_latest(REGISTRY)
    )
    return Response(body, media_type=MEDIA_TYPE)
