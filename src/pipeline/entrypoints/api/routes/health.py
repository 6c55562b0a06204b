"""`/health` (the process is alive) and `/ready` (its database and broker answer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from pipeline.entrypoints.api.models import Health, Readiness
from pipeline.entrypoints.bootstrap import Pipeline

CHECK_TIMEOUT = 3.0
"""Seconds each dependency gets to answer before it counts as unreachable."""
CHECK_TTL = 2.0
"""Seconds a readiness answer is reused, so that frequent probes stay cheap."""
BROKER_NOT_CONFIGURED = (
    "not configured: PIPELINE_KAFKA__BOOTSTRAP_SERVERS is unset, so this process reads an "
    "in-memory log that nothing else writes to (the live view gets no readings)"
)

Probe = Callable[[], Awaitable[object]]


@get("/health", summary="Liveness", tags=["health"])
async def health() -> Health:
    """The process is alive and serving requests."""
    return Health()


class ReadinessChecks:
    """The dependency checks behind `/ready`. Each probe has `timeout` seconds to answer;
    an answer is reused for `ttl` seconds, and concurrent requests share one round of probes.
    A probe still running past its timeout is waited for again by the next round rather
    than started twice (a broker that does not answer must not pile up connections)."""

    def __init__(
        self,
        probes: Mapping[str, Probe | str],
        *,
        timeout: float = CHECK_TIMEOUT,
        ttl: float = CHECK_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probes = probes
        """A probe per dependency, or the reason it fails without probing."""
        self._timeout = timeout
        self._ttl = ttl
        self._clock = clock
        self._running: dict[str, asyncio.Task[object]] = {}
        self._round: asyncio.Task[dict[str, str]] | None = None
        self._answer: tuple[float, dict[str, str]] | None = None

    async def results(self) -> dict[str, str]:
        """Each dependency's state: "ok" or what went wrong."""
        if self._answer is not None and self._clock() - self._answer[0] < self._ttl:
            return self._answer[1]
        if self._round is None:
            self._round = asyncio.get_running_loop().create_task(self._check_all())
        # Shielded: a client that gives up does not cancel the round others wait for.
        return await asyncio.shield(self._round)

    async def _check_all(self) -> dict[str, str]:
        try:
            names = list(self._probes)
            states = await asyncio.gather(*(self._check(name) for name in names))
            results = dict(zip(names, states, strict=True))
            self._answer = (self._clock(), results)
            return results
        finally:
            self._round = None

    async def _check(self, name: str) -> str:
        probe = self._probes[name]
        if isinstance(probe, str):
            return probe
        task = self._running.get(name)
        if task is None or task.done():
            task = self._running[name] = asyncio.ensure_future(probe())
            task.add_done_callback(_retrieve)
        try:
            await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except TimeoutError:
            return f"no answer within {self._timeout:g}s"
        # Readiness reports any failure of a dependency instead of failing itself.
        except Exception as exc:  # noqa: BLE001
            return f"{type(exc).__name__}: {exc}"
        return "ok"


def _retrieve(task: asyncio.Future[object]) -> None:
    # The outcome is read by whoever waits; one nobody waited for any more is not an error.
    if not task.cancelled():
        task.exception()


def readiness_checks(pipeline: Pipeline, *, broker_configured: bool) -> ReadinessChecks:
    """The checks of `pipeline`: its database, and its broker (the end offsets of the
    readings topic: a metadata and a ListOffsets request) unless none is configured."""
    topic = pipeline.settings.topics.sensor_readings
    broker: Probe | str = BROKER_NOT_CONFIGURED
    if broker_configured:

        def broker_probe() -> Awaitable[object]:
            return pipeline.log.end_offsets(topic)

        broker = broker_probe
    return ReadinessChecks(
        {"database": pipeline.store.ping, "broker": broker}, timeout=CHECK_TIMEOUT, ttl=CHECK_TTL
    )


@get(
    "/ready",
    summary="Readiness",
    tags=["health"],
    responses={503: ResponseSpec(Readiness, description="A dependency does not answer.")},
)
async def ready(
    request: Request[Any, Any, Any], pipeline: NamedDependency[Pipeline]
) -> Response[Readiness]:
    """200 when the database and the broker answer; 503 naming the ones that did not.
    Answers are reused for 2 s."""
    state = request.app.state
    checks: ReadinessChecks | None = state.get("readiness")
    if checks is None:
        checks = state.readiness = readiness_checks(
            pipeline, broker_configured=state.get("broker_configured", True)
        )
    results = await checks.results()
    ok = all(v == "ok" for v in results.values())
    body = Readiness(status="ready" if ok else "unavailable", checks=results)
    return Response(body, status_code=200 if ok else 503)
