"""Shared fixtures. Real-service endpoints come from tests/services.py."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from pipeline.adapters.clock import ManualClock
from tests.services import cluster_environment


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `late` run after all the others, whatever order pytest-randomly chose:
    they wait for a service the stack may still be building."""
    items.sort(key=lambda item: item.get_closest_marker("late") is not None)


@pytest.fixture
def clock() -> ManualClock:
    """A processing clock fixed at a known instant."""
    return ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Undo `configure_logging` after every test: a test that runs a command in-process
    leaves structlog (and the root logger's handlers) writing to that test's captured
    stream, which pytest closes, and a later test's log call would then fail."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    structlog.reset_defaults()
    # Only what `logging.basicConfig` added: pytest's own capture handlers (subclasses of
    # StreamHandler) come and go with each test phase and are pytest's to remove.
    for handler in list(root.handlers):
        if handler not in before and type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _cluster_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test marked `cluster` sees the production-shape stack's endpoints (scripts/test
    starts it beside the default one); autouse, so before any fixture reads them."""
    if request.node.get_closest_marker("cluster") is None:
        return
    for name, value in cluster_environment(os.environ).items():
        monkeypatch.setenv(name, value)
