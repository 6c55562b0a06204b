"""`pipeline demo`: the generators and the workers in one process, on the in-memory log and
registry and a SQLite file, with the API and the live dashboard served by uvicorn in the same
event loop over that same pipeline. No services, no Docker.

The sensor fleet runs at `--rate`; every other stream whose job is registered (shop,
payments, social) runs its generator at `--stream-rate` with its job beside it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import uvicorn
from pydantic import SecretStr

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.application.errors import ConfigurationError
from pipeline.application.lag import consumer_lag
from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.progress import RateMeter, StatusLine
from pipeline.entrypoints.runtime import (
    EXIT_OK,
    install_stop_handlers,
    tune_gc_for_streaming,
)
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import DatabaseSettings, Settings
from pipeline.entrypoints.simulated import DOMAINS, produce_simulated
from pipeline.entrypoints.worker import run_named_job

FEEDING_JOBS = {"social": ("social-tags", "post-engagement")}
"""The other jobs of a stream beside the one named like it: `social` counts the hashtag
uses `social-tags` writes, and `post-engagement` joins the posts with their engagement."""


def demo_settings(settings: Settings, db: str) -> Settings:
    """The demo's settings: a SQLite file unless a database is configured."""
    if not settings.database.is_default:
        return settings
    database = DatabaseSettings(url=SecretStr(f"sqlite+aiosqlite:///{db}"))
    return settings.model_copy(update={"database": database})


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (port 0: a free one), bound before anything
    starts so that a port in use is reported at once (ConfigurationError: exit 1)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as error:
        raise ConfigurationError(f"cannot resolve --host {host!r}: {error}") from error
    try:
        return socket.create_server(address[:2], family=family)
    except OSError as error:
        raise ConfigurationError(
            f"cannot serve the dashboard on {host}:{port}: {error.strerror or error}. "
            "Choose another --port (0 = any free port) or pass --no-api."
        ) from error


def base_url(sock: socket.socket) -> str:
    """The URL a browser on this machine opens for the server listening on `sock`."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class EmbeddedServer(uvicorn.Server):
    """uvicorn serving inside the demo's event loop. It leaves the signals alone: the demo's
    stop event (Ctrl-C, `--duration`) shuts it down, and uvicorn re-raising a captured
    Ctrl-C after shutdown would count as a second, forcing interrupt."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """No signal handlers of its own."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then announce that connections are accepted."""
        await super().startup(sockets)
        if self.started:
            self.listening.set()


async def serve_api(
    pipeline: Pipeline,
    settings: Settings,
    sock: socket.socket,
    stop: asyncio.Event,
    on_listening: Callable[[], None],
    *,
    lag_group: str,
) -> None:
    """Serve the API and the dashboard on `pipeline` from `sock` until `stop` is set; call
    `on_listening` once the server accepts connections. The live view shows the lag of the
    demo worker's group `lag_group`."""
    config = uvicorn.Config(
        create_app(pipeline, settings, live_lag_group=lag_group),
        lifespan="on",
        log_config=None,
        # The demo prints its own URL and status line; uvicorn's start/stop lines would
        # only interleave with them (its warnings and errors still show).
        log_level="warning",
        access_log=False,
        # Open WebSockets (a dashboard left open) must not hold the demo's exit forever.
        timeout_graceful_shutdown=3,
        # As `pipeline api` serves the live view (see api.server.uvicorn_config).
        ws="wsproto",
        ws_per_message_deflate=False,
    )
    server = EmbeddedServer(config)

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exit_:
            # uvicorn exits the process when the app's startup fails: a demo failure here.
            raise ConfigurationError(f"the API server did not start (exit {exit_.code})") from None

    serving = asyncio.create_task(run())
    try:
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        if server.listening.is_set():
            on_listening()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    finally:
        # Also when the demo fails elsewhere: the server shuts down before the pipeline closes.
        server.should_exit = True
        await serving


def start_streams(
    tasks: asyncio.TaskGroup,
    pipeline: Pipeline,
    *,
    stream_stats: dict[str, WorkerStats],
    args: argparse.Namespace,
    stop: asyncio.Event,
    run_id: str,
) -> None:
    """Start each other stream's generator (at `--stream-rate`) and its job in `tasks`."""
    for domain, stats in stream_stats.items():
        tasks.create_task(
            produce_simulated(
                pipeline, domain, count=None, rate=args.stream_rate, seed=args.seed, stop=stop
            )
        )
        group = f"{pipeline.group_id(domain)}-demo-{run_id}"
        tasks.create_task(run_named_job(pipeline, domain, group_id=group, stop=stop, stats=stats))
        for job in FEEDING_JOBS.get(domain, ()):
            group = f"{pipeline.group_id(job)}-demo-{run_id}"
            tasks.create_task(run_named_job(pipeline, job, group_id=group, stop=stop))


async def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run until Ctrl-C or `--duration`; print a summary."""
    settings = demo_settings(settings, args.db)
    sock = None if args.no_api else listen(args.host, args.port)
    stop = asyncio.Event()
    install_stop_handlers(stop)
    pipeline = await bootstrap(
        settings,
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        migrate=True,
        metrics=True,
    )
    tune_gc_for_streaming()
    # The in-memory log is new with every run while the SQLite file is kept: offsets stored
    # by an earlier run's group would point past this log's end.
    run_id = uuid.uuid4().hex[:8]
    group = f"{pipeline.group_id('sensors')}-demo-{run_id}"
    streams = [d for d in DOMAINS if d in JOBS] if args.stream_rate > 0 else []
    stream_stats = {domain: WorkerStats() for domain in streams}
    stats = WorkerStats()
    status = StatusLine()
    meter = RateMeter(window=RATE_WINDOW_S)
    started = time.monotonic()
    earlier = await pipeline.store.count_readings()
    status.print(
        f"pipeline demo: {args.sensors} sensors at {args.rate:g} readings/s → in-memory log → "
        f"sensors worker → {settings.database.url.get_secret_value()}  (Ctrl-C stops)"
        + "".join(
            f"\n               {domain} at {args.stream_rate:g} events/s → {domain} worker"
            for domain in streams
        ),
        sys.stdout,
    )

    async def report() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            meter.add(stats.records)
            lag = await consumer_lag(
                pipeline.log, pipeline.checkpoint, pipeline.settings.topics.sensor_readings, group
            )
            status.update(status_text(meter.rate(), stats, lag=lag, earlier_readings=earlier))

    async def deadline() -> None:
        if args.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.duration)
            stop.set()

    try:
        with status.logs_above():
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(
                    produce_sensors(
                        pipeline,
                        count=None,
                        rate=args.rate,
                        seed=args.seed,
                        sensors=args.sensors,
                        anomaly_rate=args.anomaly_rate,
                        stop=stop,
                    )
                )
                tasks.create_task(
                    run_named_job(pipeline, "sensors", group_id=group, stop=stop, stats=stats)
                )
                start_streams(
                    tasks, pipeline, stream_stats=stream_stats, args=args, stop=stop, run_id=run_id
                )
                tasks.create_task(report())
                tasks.create_task(deadline())
                if sock is not None:
                    url = base_url(sock)
                    tasks.create_task(
                        serve_api(
                            pipeline,
                            settings,
                            sock,
                            stop,
                            lambda: status.print(
                                f"Dashboard: {url}/  API docs: {url}/docs", sys.stdout
                            ),
                            lag_group=group,
                        )
                    )
        elapsed = time.monotonic() - started
        readings = await pipeline.store.count_readings()
        alerts = len(await pipeline.store.alerts(limit=1_000_000))
    finally:
        if sock is not None:
            sock.close()
        await pipeline.aclose()
    status.done()
    print(
        summary_text(
            stats,
            elapsed=elapsed,
            database=settings.database.url.get_secret_value(),
            readings=readings,
            alerts=alerts,
        )
        + "".join(
            f"\n{domain}: this run processed {counts.records:,} events, "
            f"{sum(counts.rejected.values()):,} rejected, {counts.events:,} alerts raised"
            for domain, counts in stream_stats.items()
        )
    )
    return EXIT_OK


RATE_WINDOW_S = 10.0
"""The status line's rate is over this many seconds: the worker counts whole batches."""


def status_text(rate: float, stats: WorkerStats, *, lag: int, earlier_readings: int) -> str:
    """The demo's status line: what this run did, and what the database holds in all."""
    return (
        f"{rate:7,.0f} readings/s (last {RATE_WINDOW_S:g} s) | this run: "
        f"{stats.written['readings']:,} stored, {stats.events:,} alerts, "
        f"{sum(stats.rejected.values()):,} rejected | lag {lag:,} | "
        f"database: {earlier_readings + stats.written['readings']:,} readings, all runs"
    )


def summary_text(
    stats: WorkerStats, *, elapsed: float, database: str, readings: int, alerts: int
) -> str:
    """The demo's summary: this run's counts, then what the database holds after all runs."""
    per_second = stats.records / elapsed if elapsed else 0.0
    return (
        f"demo summary: this run processed {stats.records:,} readings in {elapsed:.1f} s "
        f"({per_second:,.0f}/s): {stats.written['readings']:,} stored, "
        f"{sum(stats.rejected.values()):,} rejected, {stats.events:,} alerts raised\n"
        f"database {database}: {readings:,} readings and {alerts:,} alerts stored by all runs"
    )
