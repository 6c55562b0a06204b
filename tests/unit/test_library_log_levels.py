"""Libraries that log every HTTP request at INFO (the schema registry client's httpx2 among
them) stay quiet under the application's INFO logging: a producer registering its schemas
prints no "HTTP Request: POST …" lines."""

from __future__ import annotations

import logging

import pytest

from pipeline.entrypoints.logging import configure_logging


@pytest.mark.parametrize("name", ["httpx", "httpx2", "httpcore2", "alembic"])
def test_a_chatty_librarys_info_lines_are_not_shown_at_info(name: str) -> None:
    configure_logging("INFO")

    assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    assert logging.getLogger(name).isEnabledFor(logging.WARNING)
