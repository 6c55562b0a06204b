"""The shop generator: reproducible, valid, sessions walking a realistic funnel over a daily
cycle, and checkout outages labelled where purchases really stop."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import Generated
from pipeline.application.generators.production import LANES
from pipeline.application.generators.shop import (
    CURRENCIES,
    ShopAnomalyKind,
    ShopConfig,
    catalogue,
    generate_shop,
)
from pipeline.domain.shop import ShopEvent, ShopEventType, validate_shop_event
from tests.unit.generators.streams import in_lanes

START = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def shop(seed: int = 3, lanes: int = 1, **config: object) -> Iterator[Generated[ShopEvent]]:
    """The stream of `seed`; with `lanes`, as a producer run makes it: that many lanes merged."""
    settings = ShopConfig(**config)  # type: ignore[arg-type]
    return in_lanes(generate_shop, seed=seed, start=START, config=settings, lanes=lanes)


@pytest.fixture(scope="module", params=[1, LANES], ids=["whole", "lanes"])
def day(request: pytest.FixtureRequest) -> list[Generated[ShopEvent]]:
    """A simulated day at 3 events/s with an outage every 3 hours on average:
    the whole stream, and a producer run's 12 lanes merged."""
    stream = shop(lanes=request.param, events_per_second=3.0, outages_per_day=8.0)
    return list(itertools.takewhile(lambda g: g.event.timestamp < START + DAY, stream))


@pytest.fixture(scope="module")
def sessions(day: list[Generated[ShopEvent]]) -> dict[str, list[ShopEvent]]:
    found: dict[str, list[ShopEvent]] = defaultdict(list)
    for g in day:
        found[g.event.session_id].append(g.event)
    return found


def test_same_seed_and_start_give_an_identical_stream() -> None:
    assert list(itertools.islice(shop(), 3_000)) == list(itertools.islice(shop(), 3_000))


def test_different_seeds_give_different_streams() -> None:
    first = [g.event for g in itertools.islice(shop(seed=1), 200)]
    second = [g.event for g in itertools.islice(shop(seed=2), 200)]

    assert first != second


def test_every_event_is_valid(day: list[Generated[ShopEvent]]) -> None:
    for g in day:
        validate_shop_event(g.event)


def test_stream_is_in_non_decreasing_event_time(day: list[Generated[ShopEvent]]) -> None:
    times = [g.event.timestamp for g in day]

    assert times == sorted(times)


def test_event_ids_are_unique(day: list[Generated[ShopEvent]]) -> None:
    assert len({g.event.event_id for g in day}) == len(day)


def test_a_session_starts_with_a_search_or_a_view_and_never_pauses_30_minutes(
    sessions: dict[str, list[ShopEvent]],
) -> None:
    for events in sessions.values():
        assert events[0].event_type in (ShopEventType.SEARCH, ShopEventType.PAGE_VIEW)
        assert len({(e.user_id) for e in events}) == 1
        for before, after in itertools.pairwise(events):
            assert after.timestamp - before.timestamp < timedelta(minutes=30)


def test_a_purchase_orders_the_cart_added_since_the_last_purchase(
    sessions: dict[str, list[ShopEvent]],
) -> None:
    purchases = 0
    for events in sessions.values():
        cart: list[tuple[str, int]] = []
        for event in events:
            if event.event_type is ShopEventType.ADD_TO_CART:
                assert event.product_id is not None
                assert event.quantity is not None
                cart.append((event.product_id, event.quantity))
            elif event.event_type is ShopEventType.PURCHASE:
                assert event.order is not None
                assert [(line.product_id, line.quantity) for line in event.order.lines] == cart
                assert event.order.currency in {code for code, _, _ in CURRENCIES}
                cart = []
                purchases += 1

    assert purchases > 0


def test_the_funnel_converts_and_abandons_at_realistic_rates(
    sessions: dict[str, list[ShopEvent]],
) -> None:
    reached = Counter[ShopEventType]()
    for events in sessions.values():
        reached.update({e.event_type for e in events})
    carts = reached[ShopEventType.ADD_TO_CART] / len(sessions)
    conversion = reached[ShopEventType.PURCHASE] / len(sessions)

    assert 0.05 <= carts <= 0.25
    assert 0.01 <= conversion <= 0.06
    assert 0.5 <= 1 - conversion / carts <= 0.9  # cart abandonment


def test_a_user_shops_in_one_currency_at_catalogue_prices(
    day: list[Generated[ShopEvent]],
) -> None:
    prices = {p.product_id: p.prices for p in catalogue(3, ShopConfig().products)}
    currencies: dict[str, set[str]] = defaultdict(set)
    for g in day:
        order = g.event.order
        if order is not None:
            currencies[order.user_id].add(order.currency)
            index = [code for code, _, _ in CURRENCIES].index(order.currency)
            for line in order.lines:
                assert line.unit_price == prices[line.product_id][index]

    assert all(len(found) == 1 for found in currencies.values())


def test_evenings_are_busier_than_mornings(day: list[Generated[ShopEvent]]) -> None:
    by_hour = Counter(g.event.timestamp.hour for g in day)

    assert by_hour[20] > 2 * by_hour[8]


def test_no_purchase_happens_during_a_labelled_outage(day: list[Generated[ShopEvent]]) -> None:
    spans: dict[str, list[datetime]] = defaultdict(list)
    for g in day:
        if g.label is not None:
            assert g.label.kind == ShopAnomalyKind.CHECKOUT_OUTAGE
            spans[g.label.anomaly_id].append(g.event.timestamp)

    assert spans
    for moments in spans.values():
        inside = [g.event for g in day if moments[0] <= g.event.timestamp <= moments[-1]]
        assert all(e.event_type is not ShopEventType.PURCHASE for e in inside)
        assert timedelta(minutes=5) <= moments[-1] - moments[0] <= timedelta(minutes=30)


def test_purchases_happen_outside_outages(day: list[Generated[ShopEvent]]) -> None:
    purchases = [g for g in day if g.event.event_type is ShopEventType.PURCHASE]

    assert purchases
    assert all(g.label is None for g in purchases)


def test_without_outages_nothing_is_labelled() -> None:
    stream = shop(outages_per_day=0.0)

    assert not any(g.label for g in itertools.islice(stream, 5_000))


@pytest.mark.parametrize(
    "changes",
    [
        {"events_per_second": 0},
        {"products": 0},
        {"users": 0},
        {"outages_per_day": -1.0},
        {"outage_minutes": (30.0, 10.0)},
    ],
)
def test_impossible_settings_are_a_configuration_error(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ShopConfig(**changes)  # type: ignore[arg-type]
