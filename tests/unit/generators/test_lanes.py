"""A producer run in lanes: N processes each generate only their lanes' sessions, accounts or
posts, and together they make exactly the one-process run, with what spans entities (outages,
bursts, account profiles) drawn once for the whole stream."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import Generated, Lane
from pipeline.application.generators.payments import PaymentsConfig, generate_payments
from pipeline.application.generators.production import (
    LANES,
    lane_count,
    lanes_of,
    merged,
    planned_events,
)
from pipeline.application.generators.shop import ShopConfig, generate_shop
from pipeline.application.generators.simulations import SIMULATIONS
from pipeline.application.generators.social import SocialConfig, generate_social
from pipeline.domain.payments import AccountProfile, Transaction
from pipeline.domain.social import Post

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DOMAINS = sorted(SIMULATIONS)
KEY = {"shop": "session_id", "payments": "account_id", "social": "post_id"}


def run(
    domain: str, lanes: Sequence[Lane] | None = None, *, count: int = 3_000, seed: int = 3
) -> list[Generated[Any]]:
    return list(
        planned_events(SIMULATIONS[domain], seed=seed, now=NOW, count=count, rate=0, lanes=lanes)
    )


def key(domain: str, item: Generated[Any]) -> str:
    found: str = getattr(item.event, KEY[domain])
    return found


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_same_seed_and_lanes_give_the_same_events(domain: str) -> None:
    assert run(domain, lanes_of(1, 2)) == run(domain, lanes_of(1, 2))


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("processes", [2, 5])
def test_the_processes_together_generate_exactly_the_one_process_run(
    domain: str, processes: int
) -> None:
    whole = run(domain)
    shares = [run(domain, lanes_of(index, processes)) for index in range(processes)]

    assert len(whole) == 3_000
    assert sum(map(len, shares)) == 3_000
    assert Counter(item for share in shares for item in share) == Counter(whole)


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_session_account_or_post_comes_from_one_process_in_the_run_order(
    domain: str,
) -> None:
    whole = run(domain)
    shares = [run(domain, lanes_of(index, 2)) for index in range(2)]

    keys = [{key(domain, item) for item in share} for share in shares]
    assert all(keys)
    assert not keys[0] & keys[1]
    for index, share in enumerate(shares):
        assert share == [item for item in whole if key(domain, item) in keys[index]]


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_lane_draws_only_its_own_entities(domain: str) -> None:
    lane = Lane(5, LANES)
    numbers = {int(key(domain, item).rsplit("-", 1)[-1]) for item in run(domain, [lane])}

    assert numbers
    # Sessions, accounts and posts are numbered from 1.
    assert {(number - 1) % LANES for number in numbers} == {lane.index}


def test_every_account_profile_is_generated_once_before_its_first_payment() -> None:
    whole = run("payments", count=20_000)

    profiles = Counter(g.event.account_id for g in whole if isinstance(g.event, AccountProfile))
    assert profiles
    assert set(profiles.values()) == {1}
    seen: set[str] = set()
    for g in whole:
        if isinstance(g.event, AccountProfile):
            seen.add(g.event.account_id)
        elif isinstance(g.event, Transaction):
            assert g.event.account_id in seen


def test_a_checkout_outage_spans_the_lanes_with_one_label() -> None:
    config = ShopConfig(events_per_second=3.0, outages_per_day=24.0)
    lanes = [
        generate_shop(seed=4, start=NOW, config=config, lane=Lane(index, LANES))
        for index in range(LANES)
    ]
    day = itertools.takewhile(
        lambda g: g.event.timestamp < NOW + timedelta(hours=12), merged(lanes)
    )
    times: dict[str, list[datetime]] = defaultdict(list)
    lanes_by_outage: dict[str, set[int]] = defaultdict(set)
    for g in day:
        if g.label is not None:
            times[g.label.anomaly_id].append(g.event.timestamp)
            lanes_by_outage[g.label.anomaly_id].add(lane_of(g.event.session_id))

    assert len(times) >= 3
    for outage, moments in times.items():
        assert max(moments) - min(moments) <= timedelta(minutes=30)  # one outage, not one a lane
        assert len(lanes_by_outage[outage]) > 1


def test_a_hashtag_burst_is_one_burst_across_the_lanes() -> None:
    config = SocialConfig(events_per_second=4.0, bursts_per_day=48.0)
    lanes = [
        generate_social(seed=4, start=NOW, config=config, lane=Lane(index, LANES))
        for index in range(LANES)
    ]
    day = itertools.takewhile(lambda g: g.event.timestamp < NOW + timedelta(hours=6), merged(lanes))
    tags: dict[str, set[str | None]] = defaultdict(set)
    times: dict[str, list[datetime]] = defaultdict(list)
    lanes_by_burst: dict[str, set[int]] = defaultdict(set)
    for g in day:
        if g.label is not None:
            assert isinstance(g.event, Post)
            tags[g.label.anomaly_id].add(g.label.subject)
            times[g.label.anomaly_id].append(g.event.timestamp)
            lanes_by_burst[g.label.anomaly_id].add(lane_of(g.event.post_id))

    assert len(tags) >= 3
    for burst, subjects in tags.items():
        assert len(subjects) == 1  # one tag per burst, whichever lane posted
        assert max(times[burst]) - min(times[burst]) <= timedelta(minutes=60)
        assert len(lanes_by_burst[burst]) > 1


def lane_of(numbered_id: str) -> int:
    return (int(numbered_id.rsplit("-", 1)[-1]) - 1) % LANES


@pytest.mark.parametrize("count", [0, 1, 11, 12, 13, 3_001])
def test_a_count_is_shared_out_among_the_lanes_exactly(count: int) -> None:
    counts = [lane_count(count, Lane(index, LANES)) for index in range(LANES)]

    assert sum(counts) == count
    assert max(counts) - min(counts) <= 1


@pytest.mark.parametrize(("process", "processes"), [(0, 0), (0, LANES + 1), (2, 2)])
def test_processes_beyond_the_lanes_are_a_configuration_error(process: int, processes: int) -> None:
    with pytest.raises(ConfigurationError):
        lanes_of(process, processes)


def test_a_lane_beyond_its_count_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Lane(LANES, LANES)


def test_fewer_accounts_than_lanes_are_a_configuration_error() -> None:
    config = PaymentsConfig(accounts=5)
    stream = generate_payments(seed=1, start=NOW, config=config, lane=Lane(7, LANES))

    with pytest.raises(ConfigurationError, match="5 entities cannot be shared by 12 lanes"):
        next(stream)
