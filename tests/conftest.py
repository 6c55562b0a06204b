"""Shared fixtures. Real-service endpoints come from tests/services.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.adapters.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A processing clock fixed at a known instant."""
    return ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
