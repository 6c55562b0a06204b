"""`/health` (the process is alive) and `/ready` (its database and broker answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from pipeline.entrypoints.api.models import Health, Readiness
from pipeline.entrypoints.bootstrap import Pipeline

CHECK_TIMEOUT = 3.0
"""Seconds each dependency gets to answer before it counts as unreachable."""


@get("/health", summary="Liveness", tags=["health"])
async def health() -> Health:
    """The process is alive and serving requests."""
    return Health()


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except TimeoutError:
        return name, f"no answer within {CHECK_TIMEOUT:g}s"
    # Readiness reports any failure of a dependency instead of failing itself.
    except Exception as exc:  # noqa: BLE001
        return name, f"{type(exc).__name__}: {exc}"
    return name, "ok"


@get(
    "/ready",
    summary="Readiness",
    tags=["health"],
    responses={503: ResponseSpec(Readiness, description="A dependency does not answer.")},
)
async def ready(pipeline: NamedDependency[Pipeline]) -> Response[Readiness]:
    """200 when the database and the broker answer; 503 naming the ones that did not."""
    results = await asyncio.gather(
        _check("database", pipeline.store.ping()),
        _check("broker", pipeline.log.end_offsets(pipeline.settings.topics.sensor_readings)),
    )
    checks = dict(results)
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ok else "unavailable", checks=checks)
    return Response(body, status_code=200 if ok else 503)
