"""structlog configuration for every entrypoint: logs go to stderr, output to stdout.

A line logged inside a sampled span carries its `trace_id` and `span_id` (in either format),
so the lines of a batch lead to its trace in Jaeger and back."""

from __future__ import annotations

import logging
import re
import sys

import structlog

from pipeline.adapters.telemetry.log_context import add_trace_ids

_API_KEY_IN_QUERY = re.compile(r"(api_key=)[^&\s\"']*")


class RedactApiKeys(logging.Filter):
    """Masks `api_key=…` in what uvicorn logs: browsers can only send the key of a
    WebSocket (and the dashboard page passes its own) in the query string, which uvicorn
    writes into its access and WebSocket lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _API_KEY_IN_QUERY.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _API_KEY_IN_QUERY.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_api_keys_in_server_logs() -> None:
    """Install `RedactApiKeys` on uvicorn's loggers (once)."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactApiKeys) for f in logger.filters):
            logger.addFilter(RedactApiKeys())


NOISY_LIBRARIES = ("httpx", "httpcore", "httpx2", "httpcore2", "alembic")
"""Loggers of libraries that log every request or migration step at INFO."""


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Route structlog (and stdlib logging) to stderr as console lines or JSON (one object
    per line: `timestamp`, `level`, `event`, the line's fields, and `trace_id`/`span_id`
    inside a span)."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    redact_api_keys_in_server_logs()
    # Libraries that log every request or migration step at INFO speak only when it matters
    # (httpx2/httpcore2: the schema registry client's HTTP stack).
    for noisy in NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_trace_ids,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Not cached: a process that reconfigures logging (tests, embedding) gets the new sinks.
        cache_logger_on_first_use=False,
    )
