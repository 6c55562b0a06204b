"""A producer run's readings never lie ahead of the clock: at a fixed rate they are paced by
event time (sensors that go offline skip readings, so pacing by the count sent would drift
ahead), and as fast as possible they end exactly now, whatever the count and seed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.adapters.clock import VirtualClock
from pipeline.adapters.memory import (
    InMemoryEventLog,
    InMemorySchemaRegistry,
    InMemorySensorStore,
)
from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import Generated
from pipeline.application.generators.production import (
    RESOLUTION_S,
    YIELD_EVERY,
    planned_readings,
    released,
)
from pipeline.application.generators.sensors import SensorFleetConfig
from pipeline.domain.sensors import Reading
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def reading_time(reading: Reading) -> datetime:
    return reading.timestamp


def last_of_as_fast_as_possible(
    *, seed: int, count: int, fleet: SensorFleetConfig
) -> tuple[int, datetime]:
    times = [
        g.event.timestamp
        for g in planned_readings(seed=seed, now=NOW, count=count, rate=0, fleet=fleet)
    ]
    return len(times), max(times)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=-(2**31), max_value=2**31),
    count=st.integers(min_value=1, max_value=20_000),
    sensors=st.integers(min_value=1, max_value=300),
)
def test_as_fast_as_possible_the_readings_end_now_for_any_count_and_seed(
    seed: int, count: int, sensors: int
) -> None:
    # A high gap rate makes offline sensors common even in short runs.
    fleet = SensorFleetConfig(sensors=sensors, gap_rate=0.01, gap_readings=(5, 50))

    assert last_of_as_fast_as_possible(seed=seed, count=count, fleet=fleet) == (count, NOW)


def test_as_fast_as_possible_300_000_readings_of_seed_13_end_now_not_438_s_later() -> None:
    fleet = SensorFleetConfig(sensors=100)

    assert last_of_as_fast_as_possible(seed=13, count=300_000, fleet=fleet) == (300_000, NOW)


def test_as_fast_as_possible_needs_a_count() -> None:
    with pytest.raises(ConfigurationError, match="needs a count"):
        planned_readings(seed=1, now=NOW, count=None, rate=0)


def test_at_a_fixed_rate_each_sensor_reads_every_sensors_over_rate_seconds_from_now() -> None:
    readings = [
        g.event
        for g in planned_readings(
            seed=1, now=NOW, count=400, rate=200.0, fleet=SensorFleetConfig(gap_rate=0)
        )
    ]
    first = [r for r in readings if r.sensor_id == readings[0].sensor_id]

    assert min(r.timestamp for r in readings) >= NOW
    assert [b.timestamp - a.timestamp for a, b in itertools.pairwise(first)] == [
        timedelta(seconds=0.5)
    ] * 3


async def release_and_record(
    stream: Sequence[Generated[Reading]] | itertools.islice[Generated[Reading]],
    clock: VirtualClock,
    stop: asyncio.Event,
) -> list[tuple[datetime, datetime]]:
    """(event time, clock at release) of every reading released at its event time."""
    return [
        (item.event.timestamp, clock.now())
        async for due in released(
            stream, timer=clock, stop=stop, event_time=reading_time, start=clock.now()
        )
        for item in due
    ]


async def test_at_a_fixed_rate_event_time_follows_the_clock_for_a_whole_simulated_day() -> None:
    clock = VirtualClock(NOW)
    sensors, rate = 20, 1.0  # each sensor every 20 s: 86,400 readings a day if none missed
    nominal = int(DAY.total_seconds() * rate)
    stream = planned_readings(
        seed=3, now=clock.now(), count=None, rate=rate, fleet=SensorFleetConfig(sensors=sensors)
    )
    day = itertools.takewhile(lambda g: g.event.timestamp < NOW + DAY, stream)

    released_at = await release_and_record(day, clock, asyncio.Event())

    # Sensors went offline for a good share of the day: pacing by the count sent would have
    # put event time hours ahead of the clock by the evening.
    assert len(released_at) < 0.95 * nominal
    assert all(event_time <= at for event_time, at in released_at)
    # ... and it does not fall behind either: released within the pacing resolution.
    assert max(at - event_time for event_time, at in released_at) <= timedelta(seconds=RESOLUTION_S)
    assert clock.now() - NOW == pytest.approx(DAY, abs=timedelta(seconds=5))


async def test_a_paced_release_ends_when_stop_is_set() -> None:
    clock = VirtualClock(NOW)
    stop = asyncio.Event()
    stream = planned_readings(seed=1, now=NOW, count=None, rate=10.0)
    seen = 0
    after_stop = 0
    async for due in released(stream, timer=clock, stop=stop, event_time=reading_time, start=NOW):
        after_stop += stop.is_set()
        seen += len(due)
        if seen >= 50:
            stop.set()

    assert after_stop == 0
    assert 50 <= seen < 50 + YIELD_EVERY


class ClockStampedLog(InMemoryEventLog):
    """The in-memory log stamping each record with the virtual clock, as a broker stamps it
    with the time it was produced."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.published: list[tuple[int, bytes | None]] = []

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
    ) -> None:
        now_ms = int(self.clock.now().timestamp() * 1000)
        self.published.append((now_ms, value))
        await super().publish(topic, key, value, headers, now_ms)


async def test_produce_publishes_no_reading_stamped_after_its_publish_time_over_a_day() -> None:
    clock = VirtualClock(NOW)
    log = ClockStampedLog(clock)
    pipeline = await bootstrap(
        Settings(),
        log=log,
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
        clock=clock,
    )
    sensors, rate = 10, 0.5  # each sensor every 20 s
    count = int(DAY.total_seconds() * rate * 0.8)  # about a day once gaps are skipped

    sent = await produce_sensors(
        pipeline, count=count, rate=rate, seed=8, sensors=sensors, timer=clock
    )

    readings = await pipeline.reading_codec.decode_many([value for _, value in log.published])
    event_ms = [int(r.timestamp.timestamp() * 1000) for r in readings if isinstance(r, Reading)]
    assert sent == len(event_ms) == count
    assert all(event <= at for event, (at, _) in zip(event_ms, log.published, strict=True))
    assert clock.now() - NOW > timedelta(hours=20)
