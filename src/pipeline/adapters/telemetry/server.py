"""A worker's `/metrics` endpoint: prometheus-client's HTTP server, in a thread of its own, so
a scrape never waits for the event loop (nor the loop for a scrape)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server

from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry
from pipeline.application.errors import ConfigurationError


@contextmanager
def serving_metrics(telemetry: PrometheusTelemetry, *, host: str, port: int) -> Iterator[int]:
    """Serve `telemetry` on http://host:port/metrics until the block ends; yields the port
    (the one chosen when `port` is 0). A port in use is a ConfigurationError."""
    try:
        server, thread = start_http_server(port, addr=host, registry=telemetry.registry)
    except OSError as error:
        raise ConfigurationError(
            f"cannot serve metrics on {host}:{port} ({error.strerror or error}): choose "
            "another port (--metrics-port, PIPELINE_METRICS__PORT)"
        ) from error
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
