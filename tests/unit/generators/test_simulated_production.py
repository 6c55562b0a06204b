"""Producer runs of the shop, payment and social streams: at a fixed rate event time follows
the clock for a whole simulated day and the rate means what it says; as fast as possible the
events end by now whatever the count and seed; each event lands in its topic, keyed for
co-partitioning, with its label in the headers."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.adapters.clock import VirtualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.errors import ConfigurationError
from pipeline.application.generators import (
    generate_payments,
    generate_shop,
    generate_social,
    generator_named,
)
from pipeline.application.generators.base import Lane, label_from_headers
from pipeline.application.generators.production import (
    RESOLUTION_S,
    lanes_of,
    planned_events,
    released,
)
from pipeline.application.generators.simulations import SIMULATIONS
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.simulated import produce_simulated, routes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DOMAINS = sorted(SIMULATIONS)


def event_time(event: Any) -> datetime:
    moment: datetime = event.timestamp
    return moment


@pytest.mark.parametrize("domain", DOMAINS)
async def test_at_a_fixed_rate_event_time_follows_the_clock_for_a_whole_simulated_day(
    domain: str,
) -> None:
    clock = VirtualClock(NOW)
    rate = 2.0
    stream = planned_events(SIMULATIONS[domain], seed=4, now=NOW, count=None, rate=rate)
    day = itertools.takewhile(lambda g: g.event.timestamp < NOW + DAY, stream)
    lags: list[float] = []

    async for due in released(
        day, timer=clock, stop=asyncio.Event(), event_time=event_time, start=NOW
    ):
        lags.extend((clock.now() - item.event.timestamp).total_seconds() for item in due)

    assert min(lags) >= 0.0  # never ahead of the clock
    assert max(lags) <= RESOLUTION_S  # nor behind it
    assert len(lags) == pytest.approx(rate * DAY.total_seconds(), rel=0.1)
    assert clock.now() - NOW == pytest.approx(DAY, abs=timedelta(minutes=5))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    domain=st.sampled_from(DOMAINS),
    seed=st.integers(min_value=-(2**31), max_value=2**31),
    count=st.integers(min_value=1, max_value=3_000),
)
def test_as_fast_as_possible_the_events_end_shortly_before_now(
    domain: str, seed: int, count: int
) -> None:
    times = [
        g.event.timestamp
        for g in planned_events(SIMULATIONS[domain], seed=seed, now=NOW, count=count, rate=0)
    ]

    assert len(times) == count
    assert NOW - timedelta(minutes=15) <= max(times) <= NOW


@pytest.mark.parametrize("domain", DOMAINS)
def test_as_fast_as_possible_100_000_events_end_within_ten_minutes_before_now(
    domain: str,
) -> None:
    last = max(
        g.event.timestamp
        for g in planned_events(SIMULATIONS[domain], seed=13, now=NOW, count=100_000, rate=0)
    )

    assert NOW - timedelta(minutes=10) <= last <= NOW


def test_as_fast_as_possible_needs_a_count() -> None:
    with pytest.raises(ConfigurationError, match="needs a count"):
        planned_events(SIMULATIONS["shop"], seed=1, now=NOW, count=None, rate=0)


class RecordingLog(InMemoryEventLog):
    """The in-memory log recording what was published, in order, and the virtual time."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.published: list[
            tuple[str, bytes | None, bytes | None, Sequence[tuple[str, bytes]]]
        ] = []
        self.published_at: list[datetime] = []

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
    ) -> None:
        self.published.append((topic, key, value, headers))
        self.published_at.append(self.clock.now())
        await super().publish(topic, key, value, headers, timestamp_ms)


KEYS = {
    "shop": {"ShopEvent": "session_id"},
    "payments": {
        "Transaction": "account_id",
        "AccountProfile": "account_id",
        "PaymentOutcome": "account_id",
    },
    "social": {"Post": "post_id", "Engagement": "post_id"},
}


@pytest.mark.parametrize("domain", DOMAINS)
async def test_produce_routes_each_event_to_its_topic_keyed_with_its_label(domain: str) -> None:
    clock = VirtualClock(NOW)
    log = RecordingLog(clock)
    pipeline = await bootstrap(
        Settings(),
        log=log,
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
        clock=clock,
    )
    count = 3_000

    sent = await produce_simulated(pipeline, domain, count=count, rate=0, seed=9, timer=clock)

    expected = list(planned_events(SIMULATIONS[domain], seed=9, now=NOW, count=count, rate=0))
    routing = routes(pipeline, domain)
    assert sent.total() == count
    assert sent == Counter(routing[type(g.event)].topic for g in expected)
    assert [topic for topic, _, _, _ in log.published] == [
        routing[type(g.event)].topic for g in expected
    ]
    for g, (_topic, key, value, headers) in zip(expected, log.published, strict=True):
        (event,) = await routing[type(g.event)].codec.decode_many([value])
        assert event == g.event
        assert key == getattr(g.event, KEYS[domain][type(g.event).__name__]).encode()
        assert label_from_headers(headers) == g.label
    assert all(at <= NOW for at in log.published_at)


Published = tuple[str, bytes | None, bytes | None, Any]


@pytest.mark.parametrize("domain", DOMAINS)
async def test_processes_lanes_together_publish_the_one_process_run_each_key_from_one(
    domain: str,
) -> None:
    async def run(lanes: Sequence[Lane] | None) -> list[Published]:
        clock = VirtualClock(NOW)
        log = RecordingLog(clock)
        pipeline = await bootstrap(
            Settings(),
            log=log,
            registry=InMemorySchemaRegistry(),
            store=InMemorySensorStore(),
            clock=clock,
        )
        sent = await produce_simulated(
            pipeline, domain, count=2_000, rate=0, seed=5, timer=clock, lanes=lanes
        )
        assert sent.total() == len(log.published)
        return [(t, k, v, tuple(h)) for t, k, v, h in log.published]

    whole = await run(None)
    shares = [await run(lanes_of(index, 3)) for index in range(3)]

    assert len(whole) == 2_000
    assert Counter(record for share in shares for record in share) == Counter(whole)
    keys = [{key for _, key, _, _ in share} for share in shares]
    assert all(keys)
    assert sum(map(len, keys)) == len(set().union(*keys))  # no key from two processes
    for index, share in enumerate(shares):  # each key's records in the one-process order
        assert share == [record for record in whole if record[1] in keys[index]]


@pytest.mark.parametrize(
    ("name", "generator"),
    [("shop", generate_shop), ("payments", generate_payments), ("social", generate_social)],
)
def test_each_domain_generator_is_registered_by_name(name: str, generator: object) -> None:
    assert generator_named(name) is generator
