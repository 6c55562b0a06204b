"""The payment generator: reproducible, valid, profiles before payments, outcomes after
them, and fraud labels whose events really have the property that defines their pattern."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import Generated
from pipeline.application.generators.payments import (
    CARD_TESTING_CATEGORY,
    EUR_RATES,
    NORMAL_MAX_FACTOR,
    TINY_AMOUNT_EUR,
    FraudPattern,
    PaymentEvent,
    PaymentsConfig,
    account_profile,
    generate_payments,
)
from pipeline.application.generators.production import LANES
from pipeline.domain.geography import COUNTRIES, local_hour, travel_is_impossible
from pipeline.domain.payments import (
    CARD_PRESENT,
    AccountProfile,
    OutcomeKind,
    PaymentOutcome,
    Transaction,
    validate_account_profile,
    validate_payment_outcome,
    validate_transaction,
)
from tests.unit.generators.streams import in_lanes

START = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def payments(seed: int = 7, lanes: int = 1, **config: object) -> Iterator[Generated[PaymentEvent]]:
    """The stream of `seed`; with `lanes`, as a producer run makes it: that many lanes merged."""
    settings = PaymentsConfig(**config)  # type: ignore[arg-type]
    return in_lanes(generate_payments, seed=seed, start=START, config=settings, lanes=lanes)


@pytest.fixture(scope="module", params=[1, LANES], ids=["whole", "lanes"])
def day(request: pytest.FixtureRequest) -> list[Generated[PaymentEvent]]:
    """A simulated day at 2 events/s with a fraud episode every 50 transactions:
    the whole stream, and a producer run's 12 lanes merged."""
    stream = payments(lanes=request.param, events_per_second=2.0, fraud_rate=0.02)
    return list(itertools.takewhile(lambda g: g.event.timestamp < START + DAY, stream))


def transactions(day: list[Generated[PaymentEvent]]) -> list[Generated[Transaction]]:
    return [g for g in day if isinstance(g.event, Transaction)]  # type: ignore[misc]


def profiles(day: list[Generated[PaymentEvent]]) -> dict[str, AccountProfile]:
    return {g.event.account_id: g.event for g in day if isinstance(g.event, AccountProfile)}


def episodes(day: list[Generated[PaymentEvent]], kind: FraudPattern) -> list[list[Transaction]]:
    found: dict[str, list[Transaction]] = defaultdict(list)
    for g in transactions(day):
        if g.label is not None and g.label.kind == kind:
            found[g.label.anomaly_id].append(g.event)
    assert found, f"no {kind} episode in a simulated day"
    return list(found.values())


Histories = dict[str, list[Generated[Transaction]]]


@pytest.fixture(scope="module")
def histories(day: list[Generated[PaymentEvent]]) -> Histories:
    """Each account's transactions of the day, in stream order."""
    found: Histories = defaultdict(list)
    for g in transactions(day):
        found[g.event.account_id].append(g)
    return found


def history_before(
    histories: Histories, tx: Transaction, *, genuine: bool = False
) -> list[Transaction]:
    """The account's transactions in the stream before `tx` (`genuine`: unlabelled only)."""
    earlier: list[Transaction] = []
    for g in histories[tx.account_id]:
        if g.event is tx:
            return earlier
        if not (genuine and g.label is not None):
            earlier.append(g.event)
    raise AssertionError("not in the stream")


def test_same_seed_and_start_give_an_identical_stream() -> None:
    assert list(itertools.islice(payments(), 3_000)) == list(itertools.islice(payments(), 3_000))


def test_different_seeds_give_different_streams() -> None:
    first = [g.event for g in itertools.islice(payments(seed=1), 200)]
    second = [g.event for g in itertools.islice(payments(seed=2), 200)]

    assert first != second


def test_every_event_is_valid(day: list[Generated[PaymentEvent]]) -> None:
    validators = {
        Transaction: validate_transaction,
        AccountProfile: validate_account_profile,
        PaymentOutcome: validate_payment_outcome,
    }
    for g in day:
        validators[type(g.event)](g.event)  # type: ignore[operator]


def test_stream_is_in_non_decreasing_event_time(day: list[Generated[PaymentEvent]]) -> None:
    times = [g.event.timestamp for g in day]

    assert times == sorted(times)


def test_an_account_profile_comes_once_before_its_first_transaction(
    day: list[Generated[PaymentEvent]],
) -> None:
    profiled: set[str] = set()
    for g in day:
        if isinstance(g.event, AccountProfile):
            assert g.event.account_id not in profiled
            profiled.add(g.event.account_id)
        elif isinstance(g.event, Transaction):
            assert g.event.account_id in profiled


def test_an_account_profile_depends_only_on_seed_and_account_number() -> None:
    at = START + timedelta(hours=3)
    seen = profiles(list(itertools.islice(payments(), 2_000)))
    for profile in list(seen.values())[:20]:
        index = int(profile.account_id.removeprefix("acct-")) - 1

        assert account_profile(7, index, at) == dataclasses.replace(profile, timestamp=at)


def test_every_transaction_is_authorised_or_declined_within_three_seconds(
    day: list[Generated[PaymentEvent]],
) -> None:
    made = {g.event.transaction_id: g.event for g in transactions(day)}
    decided = Counter[str]()
    for g in day:
        outcome = g.event
        if isinstance(outcome, PaymentOutcome) and outcome.kind is not OutcomeKind.CHARGEBACK:
            tx = made[outcome.transaction_id]
            delay = outcome.timestamp - tx.timestamp
            assert timedelta(seconds=0.2) <= delay <= timedelta(seconds=3)
            assert (outcome.account_id, outcome.amount) == (tx.account_id, tx.amount)
            decided[outcome.transaction_id] += 1
    last = day[-1].event.timestamp
    undecided = [
        t
        for t, tx in made.items()
        if t not in decided and tx.timestamp < last - timedelta(seconds=3)
    ]
    assert not undecided
    assert set(decided.values()) == {1}


def test_chargebacks_follow_approved_transactions_and_mostly_fraud(
    day: list[Generated[PaymentEvent]],
) -> None:
    made = {g.event.transaction_id: g for g in transactions(day)}
    declined = {
        g.event.transaction_id
        for g in day
        if isinstance(g.event, PaymentOutcome) and g.event.kind is OutcomeKind.DECLINED
    }
    chargebacks = [
        g.event
        for g in day
        if isinstance(g.event, PaymentOutcome) and g.event.kind is OutcomeKind.CHARGEBACK
    ]

    assert chargebacks
    for chargeback in chargebacks:
        assert chargeback.transaction_id not in declined
        made_at = made[chargeback.transaction_id].event.timestamp
        assert chargeback.timestamp - made_at >= timedelta(minutes=10)
    of_fraud = sum(1 for c in chargebacks if made[c.transaction_id].label is not None)
    assert of_fraud / len(chargebacks) > 0.5


def test_normal_payments_stay_at_home_in_usual_categories_below_five_times_typical(
    day: list[Generated[PaymentEvent]],
) -> None:
    known = profiles(day)
    for g in transactions(day):
        if g.label is not None:
            continue
        tx, profile = g.event, known[g.event.account_id]
        assert tx.merchant_category in profile.usual_categories
        assert tx.amount <= profile.typical_amount * Decimal(NORMAL_MAX_FACTOR) + Decimal("0.01")
        if tx.channel in CARD_PRESENT:
            assert tx.country == profile.home_country


def test_no_normal_account_pays_eight_times_in_five_minutes(
    day: list[Generated[PaymentEvent]],
) -> None:
    times: dict[str, list[datetime]] = defaultdict(list)
    for g in transactions(day):
        if g.label is None:
            times[g.event.account_id].append(g.event.timestamp)
    for moments in times.values():
        for first, eighth in zip(moments, moments[7:], strict=False):
            assert eighth - first > timedelta(minutes=5)


def test_each_pattern_is_injected_in_a_day(day: list[Generated[PaymentEvent]]) -> None:
    kinds = {g.label.kind for g in transactions(day) if g.label is not None}

    assert kinds == set(FraudPattern)


def test_card_testing_is_a_burst_of_tiny_online_payments(
    day: list[Generated[PaymentEvent]],
) -> None:
    for episode in episodes(day, FraudPattern.CARD_TESTING):
        assert len(episode) >= 6
        assert episode[-1].timestamp - episode[0].timestamp <= timedelta(minutes=5)
        assert len({tx.account_id for tx in episode}) == 1
        for tx in episode:
            in_eur = tx.amount / Decimal(EUR_RATES[tx.currency])
            assert in_eur <= Decimal(TINY_AMOUNT_EUR) + Decimal("0.01")
            assert tx.merchant_category == CARD_TESTING_CATEGORY


def test_velocity_is_eight_or_more_payments_within_five_minutes(
    day: list[Generated[PaymentEvent]],
) -> None:
    for episode in episodes(day, FraudPattern.VELOCITY):
        assert len(episode) >= 8
        assert episode[-1].timestamp - episode[0].timestamp <= timedelta(minutes=5)


def test_impossible_travel_is_faster_than_a_plane_from_the_last_card_present_payment(
    day: list[Generated[PaymentEvent]], histories: Histories
) -> None:
    for (tx,) in episodes(day, FraudPattern.IMPOSSIBLE_TRAVEL):
        previous = [p for p in history_before(histories, tx) if p.channel in CARD_PRESENT][-1]
        seconds = (tx.timestamp - previous.timestamp).total_seconds()

        assert tx.channel in CARD_PRESENT
        assert travel_is_impossible(COUNTRIES[previous.country], COUNTRIES[tx.country], seconds)


def test_amount_spike_is_far_above_the_accounts_history(
    day: list[Generated[PaymentEvent]], histories: Histories
) -> None:
    known = profiles(day)
    for (tx,) in episodes(day, FraudPattern.AMOUNT_SPIKE):
        assert tx.amount >= 10 * known[tx.account_id].typical_amount
        earlier = history_before(histories, tx, genuine=True)
        assert all(tx.amount > 2 * p.amount for p in earlier)


def test_night_new_category_is_at_night_at_a_category_never_paid_at_before(
    day: list[Generated[PaymentEvent]], histories: Histories
) -> None:
    known = profiles(day)
    for (tx,) in episodes(day, FraudPattern.NIGHT_NEW_CATEGORY):
        profile = known[tx.account_id]
        assert 0.0 <= local_hour(COUNTRIES[profile.home_country], tx.timestamp) < 5.0
        assert tx.merchant_category not in profile.usual_categories
        assert tx.merchant_category not in {
            p.merchant_category for p in history_before(histories, tx)
        }


def test_fraud_labels_name_the_account_and_one_id_per_episode(
    day: list[Generated[PaymentEvent]],
) -> None:
    accounts: dict[str, set[str]] = defaultdict(set)
    for g in transactions(day):
        if g.label is not None:
            assert g.label.subject == g.event.account_id
            accounts[g.label.anomaly_id].add(g.event.account_id)

    assert all(len(ids) == 1 for ids in accounts.values())


def test_only_configured_patterns_are_injected() -> None:
    stream = payments(fraud_rate=0.2, patterns=(FraudPattern.VELOCITY,))
    kinds = {g.label.kind for g in itertools.islice(stream, 5_000) if g.label is not None}

    assert kinds == {FraudPattern.VELOCITY}


@pytest.mark.parametrize(
    "changes",
    [
        {"events_per_second": 0},
        {"accounts": 0},
        {"fraud_rate": 1.5},
        {"patterns": ()},
        {"chargeback_minutes": (5.0, 1.0)},
    ],
)
def test_impossible_settings_are_a_configuration_error(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        PaymentsConfig(**changes)  # type: ignore[arg-type]
