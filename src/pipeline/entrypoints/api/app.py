"""The Litestar application: `create_app(pipeline, settings)` wires routes, errors as
problem details, API keys, security headers and CORS, and the OpenAPI document. No globals:
every app gets its pipeline (in `app.state.pipeline`) from its creator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.base import PluginProtocol

from pipeline.application.errors import TransientError
from pipeline.entrypoints.api.auth import API_KEY_HEADER, api_key_guard
from pipeline.entrypoints.api.dashboard import DASHBOARD_HANDLERS
from pipeline.entrypoints.api.docs import OfflineDocsRenderPlugin, docs_page
from pipeline.entrypoints.api.problems import http_problem, internal_problem, unavailable_problem
from pipeline.entrypoints.api.routes.alerts import alert_controller
from pipeline.entrypoints.api.routes.health import health, ready
from pipeline.entrypoints.api.routes.metrics import metrics, request_metrics
from pipeline.entrypoints.api.routes.payments import payments_controller
from pipeline.entrypoints.api.routes.sensors import sensor_controller
from pipeline.entrypoints.api.routes.shop import shop_controller
from pipeline.entrypoints.api.routes.social import social_controller
from pipeline.entrypoints.api.security import add_security_headers, cors_config
from pipeline.entrypoints.api.shop_live import live_shop
from pipeline.entrypoints.api.tracing import request_tracing
from pipeline.entrypoints.api.ws import live_feed_lifespan, live_sensors
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import ApiSettings, Settings

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def _pipeline(state: State) -> Pipeline:
    pipeline: Pipeline = state.pipeline
    return pipeline


@get(OPENAPI_PATH, include_in_schema=False, media_type="application/json", sync_to_thread=False)
def _openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return request.app.openapi_schema.to_schema()


@get(DOCS_PATH, include_in_schema=False, media_type="text/html", sync_to_thread=False)
def _docs() -> Response[bytes]:
    return Response(docs_page(OPENAPI_PATH), media_type="text/html")


def _openapi_config() -> OpenAPIConfig:
    # Litestar's own OpenAPI router lives under /schema (so it claims neither / nor unknown
    # top-level paths); /openapi.json and /docs above serve the same document and page.
    return OpenAPIConfig(
        title="pipeline",
        version="1",
        description="Sensor readings, statistics and alerts of the streaming pipeline.",
        path="/schema",
        render_plugins=[JsonRenderPlugin(), OfflineDocsRenderPlugin(spec_url=OPENAPI_PATH)],
        components=Components(
            security_schemes={
                "ApiKey": SecurityScheme(
                    type="apiKey", name=API_KEY_HEADER, security_scheme_in="header"
                )
            }
        ),
    )


def build_app(
    settings: ApiSettings,
    *,
    pipeline: Pipeline | None = None,
    lifespan: Sequence[Lifespan] = (),
    plugins: Sequence[PluginProtocol] = (),
    live_lag_group: str | None = None,
    broker_configured: bool = True,
) -> Litestar:
    """The application. Without `pipeline`, a `lifespan` must put one in `app.state.pipeline`
    before the first request (what the uvicorn factory does). The live view's stats show the
    lag of `live_lag_group` (default: the sensors worker's group). `broker_configured` false
    says the pipeline's log is an in-memory one of this process that nothing else writes to:
    `/ready` then reports the broker as not configured."""
    key_guard = api_key_guard(settings.api_key_hashes)
    read_guards = [key_guard] if settings.require_key_for_reads else []
    api = Router(
        path="/",
        route_handlers=[
            sensor_controller(reads_need_key=settings.require_key_for_reads),
            alert_controller([key_guard], reads_need_key=settings.require_key_for_reads),
            shop_controller(reads_need_key=settings.require_key_for_reads),
            payments_controller(reads_need_key=settings.require_key_for_reads),
            social_controller(reads_need_key=settings.require_key_for_reads),
        ],
        guards=read_guards,
        security=[{"ApiKey": []}] if settings.require_key_for_reads else None,
    )
    return Litestar(
        route_handlers=[
            api,
            health,
            ready,
            metrics,
            _openapi_json,
            _docs,
            *DASHBOARD_HANDLERS,
            live_sensors(settings),
            live_shop(settings),
        ],
        dependencies={"pipeline": Provide(_pipeline, sync_to_thread=False)},
        state=State(
            {"broker_configured": broker_configured}
            | ({"pipeline": pipeline} if pipeline is not None else {})
        ),
        exception_handlers={
            HTTPException: http_problem,
            TransientError: unavailable_problem,
            Exception: internal_problem,
        },
        openapi_config=_openapi_config(),
        middleware=[request_metrics()],
        before_send=[add_security_headers],
        cors_config=cors_config(settings.cors_origins),
        # The live feed needs the pipeline: its lifespan comes after the one that makes it.
        lifespan=[*lifespan, live_feed_lifespan(lag_group=live_lag_group)],
        plugins=list(plugins),
    )


def create_app(
    pipeline: Pipeline, settings: ApiSettings | Settings, *, live_lag_group: str | None = None
) -> Litestar:
    """The application serving `pipeline` (the caller keeps owning and closing it)."""
    api = settings.api if isinstance(settings, Settings) else settings
    return build_app(
        api,
        pipeline=pipeline,
        live_lag_group=live_lag_group,
        plugins=request_tracing(pipeline.tracing),
    )
