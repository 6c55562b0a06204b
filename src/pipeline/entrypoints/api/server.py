"""Serving the API with uvicorn: one process in this event loop, or several uvicorn worker
processes that each build the app from the environment (`app_from_environment`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import structlog
import uvicorn
from litestar import Litestar
from pydantic import ValidationError

from pipeline.adapters.sql.migrate import require_current
from pipeline.entrypoints.api.app import build_app
from pipeline.entrypoints.api.tracing import request_tracing
from pipeline.entrypoints.bootstrap import bootstrap, tracing_from
from pipeline.entrypoints.logging import configure_logging
from pipeline.entrypoints.runtime import EXIT_USAGE
from pipeline.entrypoints.settings import ApiSettings, Settings

GRACEFUL_SHUTDOWN_S = 5
"""Seconds open connections get to finish when the server is asked to stop."""
FACTORY = "pipeline.entrypoints.api.server:app_from_environment"
"""Import string of the app factory uvicorn workers call."""
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

log = structlog.get_logger(__name__)


def app_for(settings: Settings) -> Litestar:
    """The app whose pipeline is bootstrapped from `settings` when the server starts (in the
    serving event loop, where its connections must live) and closed when it stops."""
    tracing = tracing_from(settings)  # the request spans' and the pipeline's

    @asynccontextmanager
    async def pipeline_lifespan(app: Litestar) -> AsyncIterator[None]:
        pipeline = await bootstrap(settings, require_schema=True, metrics=True, tracing=tracing)
        app.state.pipeline = pipeline
        # What is built by now (modules, the app, the pipeline) lives as long as the process:
        # kept out of the garbage collector's full passes, which scanned it all and held the
        # event loop (and every request) for a quarter of a second under load.
        gc.freeze()
        try:
            yield
        finally:
            await pipeline.aclose()

    broker_configured = settings.kafka.bootstrap_servers is not None
    if not broker_configured:
        log.warning(
            "no Kafka broker configured (PIPELINE_KAFKA__BOOTSTRAP_SERVERS): /ready answers "
            "503 and the live view gets no readings; the REST API reads the database"
        )
    return build_app(
        settings.api,
        lifespan=[pipeline_lifespan],
        broker_configured=broker_configured,
        plugins=request_tracing(tracing),
    )


def app_from_environment() -> Litestar:
    """The uvicorn factory of a worker process: settings from `PIPELINE_…` variables."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return app_for(settings)


async def run_api(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline api [--host H] [--port P] [--workers N]`: the options override the settings;
    invalid values are a usage error (2)."""
    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k)) is not None}
    try:
        api = ApiSettings.model_validate({**settings.api.model_dump(), **overrides})
    except ValidationError as error:
        sys.stderr.write(f"pipeline api: error: {error}\n")
        return EXIT_USAGE
    return await serve_api(settings.model_copy(update={"api": api}))


def uvicorn_config(app: Litestar, *, host: str, port: int) -> uvicorn.Config:
    """How one `pipeline api` process serves `app`."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,
        # Chosen, not left to whichever WebSocket library happens to be installed.
        ws="wsproto",
        # Compressing every live frame once per client cost a quarter of the fan-out's CPU
        # for frames of a few hundred bytes.
        ws_per_message_deflate=False,
        # Open WebSockets (a dashboard, a client that stopped reading) must not hold a
        # SIGTERM forever.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


class ApiServer(uvicorn.Server):
    """uvicorn's server, stopping gracefully on SIGINT/SIGTERM as uvicorn does, but without
    raising the signal again once it has stopped: uvicorn does that so the process dies of
    it (exit 130/143), whereas a server that was asked to stop and did is a success (0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Graceful stop on SIGINT/SIGTERM (a second SIGINT forces it) while serving."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach only the main thread
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def serve_api(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; return the process exit code (0 after a graceful stop).
    A database that is not migrated is refused before anything listens (a
    ConfigurationError, exit 1)."""
    await require_current(settings.database.url.get_secret_value())
    api = settings.api
    if api.workers == 1:
        server = ApiServer(uvicorn_config(app_for(settings), host=api.host, port=api.port))
        await server.serve()
        return 0 if server.started else 1
    # Several processes: uvicorn's supervisor forks workers that import the factory; it
    # runs as a child so that it owns the main thread and the signals it needs.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        FACTORY,
        "--host",
        api.host,
        "--port",
        str(api.port),
        "--workers",
        str(api.workers),
        "--timeout-graceful-shutdown",
        str(GRACEFUL_SHUTDOWN_S),
        "--ws",
        "wsproto",
        "--ws-per-message-deflate",
        "false",
    )
    # A stop request for this process is a graceful stop for the supervisor (SIGTERM, so that
    # a Ctrl-C the terminal also sent it is not taken as a second, forcing, interrupt).
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, process.send_signal, signal.SIGTERM)
    try:
        return await process.wait()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
