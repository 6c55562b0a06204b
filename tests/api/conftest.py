"""Fixtures of the API tests: the app on the in-memory pipeline, with a fixed clock, filled
as the sensors job fills it (tests/projection.py) with real domain objects."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.ports import SensorStore
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, Alert, check_thresholds
from pipeline.domain.sensors import Reading
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import ApiSettings, Settings
from tests.projection import writes_for

API_KEY = "s3cret-key"
API_KEY_HASH = hashlib.sha256(API_KEY.encode()).hexdigest()
UNITS = {"temperature": "celsius", "humidity": "percent", "pressure": "hPa"}


def reading(
    at: datetime,
    sensor: str = "temp-0001",
    value: float = 21.5,
    sensor_type: str = "temperature",
) -> Reading:
    """A valid reading taken at `at`."""
    return Reading(
        sensor_id=sensor,
        sensor_type=sensor_type,
        value=value,
        unit=UNITS[sensor_type],
        timestamp=at,
        location="site-01/floor-1",
    )


async def store_readings(store: SensorStore, readings: Sequence[Reading]) -> list[Alert]:
    """Store `readings` as one batch of the sensors job, with the alerts the default
    thresholds raise on them; return those alerts."""
    alerts = [a for r in readings if (a := check_thresholds(r, DEFAULT_THRESHOLDS)) is not None]
    await writes_for(store).readings(readings, alerts=alerts)
    return alerts


@pytest.fixture(autouse=True)
def _collectable() -> Iterator[None]:
    """The app `pipeline api` serves freezes what exists at its startup (`gc.freeze`): give
    it back to the garbage collector after each test, or the test run would keep it all."""
    yield
    gc.unfreeze()


@pytest.fixture
def store() -> InMemorySensorStore:
    return InMemorySensorStore()


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings(api_key_hashes=[API_KEY_HASH])


@pytest.fixture
async def pipeline(store: InMemorySensorStore, clock: ManualClock) -> AsyncIterator[Pipeline]:
    pipeline = await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=store,
        clock=clock,
    )
    yield pipeline
    await pipeline.aclose()


@pytest.fixture
def app(pipeline: Pipeline, api_settings: ApiSettings) -> Litestar:
    return create_app(pipeline, api_settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        yield client


def minutes_ago(clock: ManualClock, minutes: float) -> datetime:
    """The instant `minutes` before the clock's now."""
    return clock.now() - timedelta(minutes=minutes)
