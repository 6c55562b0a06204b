"""The payments job on the deterministic driver: validation, each fraud rule firing and not
firing, the profile join, one alert per flagged transaction, late transactions, and the
interval join with outcomes."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipeline.application.errors import ConfigurationError
from pipeline.domain import Alert, AlertDomain, AlertKind, Channel, Transaction
from pipeline.domain.fraud import (
    NO_OUTCOME,
    FlaggedTransaction,
    FlagReason,
    FraudRule,
    TransactionOutcome,
    fraud_alert_id,
)
from pipeline.domain.payments import AccountProfile, OutcomeKind, PaymentOutcome
from pipeline.entrypoints.bootstrap import topic_specs
from pipeline.entrypoints.jobs import payments_config
from pipeline.entrypoints.settings import PaymentsSettings, Settings
from pipeline.jobs.payments import (
    ALERTS,
    FLAGGED,
    OUTCOMES,
    REASONS,
    PaymentsJobConfig,
    payments_job,
)
from pipeline.streams.testing import TestDriver

# 12:00 UTC: day in Germany, so the night rule stays quiet unless a test moves the clock.
NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)
TX, ACCOUNTS, OUTCOME_TOPIC = "transactions", "accounts", "payment-outcomes"
ACCOUNT = "acct-000001"
GRACE = timedelta(seconds=30)
IDLE = timedelta(minutes=1)
"""Advancing the clock this much lets quiet partitions' watermarks follow it (idle 30 s)."""
_ids = itertools.count(1)


def a_profile(**changes: Any) -> AccountProfile:
    profile = AccountProfile(
        account_id=ACCOUNT,
        home_country="DE",
        currency="EUR",
        segment="everyday",
        typical_amount=Decimal("40.00"),
        usual_categories=("grocery", "restaurants", "fuel"),
        timestamp=NOON - timedelta(days=30),
    )
    return dataclasses.replace(profile, **changes)


def a_payment(at: datetime, **changes: Any) -> Transaction:
    tx = Transaction(
        transaction_id=f"tx-{next(_ids)}",
        account_id=ACCOUNT,
        amount=Decimal("35.00"),
        currency="EUR",
        merchant="grocery-de-001",
        country="DE",
        channel=Channel.POINT_OF_SALE,
        timestamp=at,
        merchant_category="grocery",
    )
    return dataclasses.replace(tx, **changes)


def an_outcome(tx: Transaction, kind: OutcomeKind, after: timedelta) -> PaymentOutcome:
    return PaymentOutcome(
        transaction_id=tx.transaction_id,
        account_id=tx.account_id,
        kind=kind,
        amount=tx.amount,
        currency=tx.currency,
        timestamp=tx.timestamp + after,
        reason=None if kind is OutcomeKind.AUTHORISED else "fraud",
    )


def a_driver(*, profile: AccountProfile | None = None, partitions: int = 1) -> TestDriver:
    driver = TestDriver(
        payments_job(PaymentsJobConfig(grace=GRACE)), partitions=partitions, now=NOON
    )
    if profile is not None:
        driver.send(ACCOUNTS, profile)
    return driver


def closed(driver: TestDriver, *payments: Transaction) -> TestDriver:
    """Send `payments` and let every window and interval close."""
    driver.send_all(TX, payments)
    driver.run()
    last = max(tx.timestamp for tx in payments)
    driver.set_time(max(driver.now, last + timedelta(hours=3)))
    driver.advance(IDLE)
    return driver


def reasons_of(driver: TestDriver) -> dict[str, tuple[FraudRule, ...]]:
    return {f.transaction_id: f.reasons for f in driver.results(FLAGGED.name)}


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# -- velocity -----------------------------------------------------------------------------


def test_velocity_flags_the_fifth_payment_within_five_minutes_and_the_rest_of_the_burst() -> None:
    burst = [a_payment(NOON + minutes(i)) for i in range(7)]  # 7 in 6 minutes

    driver = closed(a_driver(profile=a_profile()), *burst)

    # 0..4 are within [t-5min, t] of the fifth (index 4); index 5 sees 1..5, index 6 sees 2..6.
    assert reasons_of(driver) == {tx.transaction_id: (FraudRule.VELOCITY,) for tx in burst[4:]}


def test_payments_spread_over_more_than_five_minutes_are_not_velocity() -> None:
    spread = [a_payment(NOON + minutes(2 * i)) for i in range(10)]  # 3 per 5 minutes

    driver = closed(a_driver(profile=a_profile()), *spread)

    assert driver.results(FLAGGED.name) == []


def test_tiny_payments_do_not_count_towards_velocity() -> None:
    # Five in five minutes, but three are tiny (≤ 0.4 × 40 EUR) and card present.
    payments = [
        a_payment(NOON + minutes(i), amount=Decimal("5.00" if i % 2 else "30.00")) for i in range(5)
    ]

    driver = closed(a_driver(profile=a_profile()), *payments)

    assert driver.results(FLAGGED.name) == []


# -- card testing -------------------------------------------------------------------------


def tiny_online(at: datetime) -> Transaction:
    return a_payment(
        at,
        amount=Decimal("1.50"),
        channel=Channel.ONLINE,
        merchant="digital_goods-us-003",
        merchant_category="digital_goods",
        country="US",
    )


def test_card_testing_flags_the_third_tiny_online_payment_within_five_minutes() -> None:
    probes = [tiny_online(NOON + timedelta(seconds=20 * i)) for i in range(4)]

    driver = closed(a_driver(profile=a_profile()), *probes)

    assert reasons_of(driver) == {tx.transaction_id: (FraudRule.CARD_TESTING,) for tx in probes[2:]}


def test_tiny_payments_far_apart_are_not_card_testing() -> None:
    probes = [tiny_online(NOON + minutes(4 * i)) for i in range(4)]

    driver = closed(a_driver(profile=a_profile()), *probes)

    assert driver.results(FLAGGED.name) == []


def test_without_a_profile_or_history_tiny_cannot_be_told_and_card_testing_does_not_fire() -> None:
    probes = [tiny_online(NOON + timedelta(seconds=20 * i)) for i in range(4)]

    driver = closed(a_driver(), *probes)

    assert driver.results(FLAGGED.name) == []


# -- impossible travel --------------------------------------------------------------------


def test_a_card_present_payment_in_japan_two_hours_after_one_in_germany_is_impossible() -> None:
    home = a_payment(NOON)
    abroad = a_payment(NOON + timedelta(hours=2), country="JP", merchant="grocery-jp-001")

    driver = closed(a_driver(profile=a_profile()), home, abroad)

    assert reasons_of(driver) == {abroad.transaction_id: (FraudRule.IMPOSSIBLE_TRAVEL,)}


def test_travel_an_airliner_could_make_is_not_flagged() -> None:
    home = a_payment(NOON)
    # Germany → Japan is about 9,000 km: 12 hours is under 1,000 km/h.
    abroad = a_payment(NOON + timedelta(hours=12), country="JP", merchant="grocery-jp-001")

    driver = closed(a_driver(profile=a_profile()), home, abroad)

    assert driver.results(FLAGGED.name) == []


def test_coming_home_fast_is_not_flagged_and_online_payments_do_not_place_the_card() -> None:
    abroad = a_payment(NOON, country="JP", merchant="grocery-jp-001", channel=Channel.ONLINE)
    home = a_payment(NOON + minutes(30))
    there = a_payment(NOON + minutes(60), country="JP", merchant="grocery-jp-001")
    back = a_payment(NOON + minutes(90))

    driver = closed(a_driver(profile=a_profile()), abroad, home, there, back)

    # Only `there` is impossible: `abroad` was online, `back` is coming home.
    assert reasons_of(driver) == {there.transaction_id: (FraudRule.IMPOSSIBLE_TRAVEL,)}


# -- amount spike -------------------------------------------------------------------------


def test_a_payment_twenty_times_the_typical_amount_is_a_spike() -> None:
    history = [a_payment(NOON + timedelta(hours=i)) for i in range(6)]
    spike = a_payment(NOON + timedelta(hours=7), amount=Decimal("800.00"))

    driver = closed(a_driver(profile=a_profile()), *history, spike)

    assert reasons_of(driver) == {spike.transaction_id: (FraudRule.AMOUNT_SPIKE,)}


def test_a_large_payment_is_no_spike_for_an_account_whose_recent_payments_are_as_large() -> None:
    history = [
        a_payment(NOON + timedelta(hours=i), amount=Decimal(amount))
        for i, amount in enumerate(["30", "900", "20", "700", "40", "850"])
    ]
    large = a_payment(NOON + timedelta(hours=7), amount=Decimal("800.00"))

    driver = closed(a_driver(profile=a_profile()), *history, large)

    assert large.transaction_id not in reasons_of(driver)


def test_without_a_profile_the_median_of_the_history_is_the_typical_amount() -> None:
    history = [a_payment(NOON + timedelta(hours=i)) for i in range(5)]  # median 35
    spike = a_payment(NOON + timedelta(hours=6), amount=Decimal("500.00"))

    driver = closed(a_driver(), *history, spike)

    assert reasons_of(driver) == {spike.transaction_id: (FraudRule.AMOUNT_SPIKE,)}


# -- new category at night ----------------------------------------------------------------


def test_a_new_category_at_two_in_the_morning_local_time_is_flagged() -> None:
    night = datetime(2026, 11, 30, 1, tzinfo=UTC)  # 02:00 in Germany (UTC+1)
    jewelry = a_payment(night, merchant="jewelry-de-004", merchant_category="jewelry")

    driver = closed(a_driver(profile=a_profile()), jewelry)

    assert reasons_of(driver) == {jewelry.transaction_id: (FraudRule.NIGHT_NEW_CATEGORY,)}


@pytest.mark.parametrize(
    ("at", "category"),
    [
        (datetime(2026, 11, 30, 1, tzinfo=UTC), "grocery"),  # night, usual category
        (datetime(2026, 11, 30, 5, tzinfo=UTC), "jewelry"),  # 06:00 local: not night
    ],
)
def test_a_usual_category_at_night_or_a_new_one_by_day_is_not_flagged(
    at: datetime, category: str
) -> None:
    tx = a_payment(at, merchant=f"{category}-de-004", merchant_category=category)

    driver = closed(a_driver(profile=a_profile()), tx)

    assert driver.results(FLAGGED.name) == []


def test_a_category_paid_at_earlier_today_is_not_new_at_night() -> None:
    evening = a_payment(
        datetime(2026, 11, 29, 20, tzinfo=UTC), merchant="jewelry-de-4", merchant_category="jewelry"
    )
    night = a_payment(
        datetime(2026, 11, 30, 1, tzinfo=UTC), merchant="jewelry-de-4", merchant_category="jewelry"
    )

    driver = closed(a_driver(profile=a_profile()), evening, night)

    assert night.transaction_id not in reasons_of(driver)


# -- flags, reasons, alerts ---------------------------------------------------------------


def test_a_transaction_several_rules_fire_on_has_every_reason_one_alert_and_a_higher_score() -> (
    None
):
    home = a_payment(NOON)
    abroad = a_payment(
        NOON + timedelta(hours=1), country="JP", merchant="travel-jp-001", amount=Decimal("900")
    )

    driver = closed(a_driver(profile=a_profile()), home, abroad)

    [flagged] = driver.results(FLAGGED.name)
    assert flagged.reasons == (FraudRule.IMPOSSIBLE_TRAVEL, FraudRule.AMOUNT_SPIKE)
    assert flagged.score == pytest.approx(1 - (1 - 0.9) * (1 - 0.8))
    assert driver.results(REASONS.name) == [
        FlagReason(transaction_id=abroad.transaction_id, rule=rule, timestamp=abroad.timestamp)
        for rule in flagged.reasons
    ]
    [alert] = driver.results(ALERTS.name)
    assert isinstance(alert, Alert)
    assert (alert.kind, alert.domain, alert.source) == (
        AlertKind.FRAUD,
        AlertDomain.PAYMENTS,
        ACCOUNT,
    )
    assert alert.reasons == ("impossible_travel", "amount_spike")
    assert alert.score == flagged.score
    assert alert.alert_id == fraud_alert_id(abroad.transaction_id, abroad.timestamp)


def test_a_replay_flags_the_same_transactions_with_the_same_alert_ids() -> None:
    burst = [a_payment(NOON + minutes(i)) for i in range(6)]
    driver = closed(a_driver(profile=a_profile()), *burst)
    first = driver.results(ALERTS.name)

    driver.replay(from_offset=0)
    driver.run()
    driver.advance(IDLE)

    assert [a.alert_id for a in driver.results(ALERTS.name)] == [a.alert_id for a in first]
    assert len(first) == 2


def test_a_crash_before_the_checkpoint_flags_nothing_twice() -> None:
    driver = a_driver(profile=a_profile())
    burst = [a_payment(NOON + minutes(i)) for i in range(6)]
    driver.send_all(TX, burst[:3])
    driver.run()
    driver.send_all(TX, burst[3:])
    driver.run(commit=False)
    driver.set_time(NOON + timedelta(hours=3))
    driver.crash()

    driver.run()
    driver.advance(IDLE)

    assert sorted(reasons_of(driver)) == sorted(tx.transaction_id for tx in burst[4:])
    assert len(driver.results(ALERTS.name)) == 2


def test_an_invalid_transaction_is_a_dead_letter_named_for_its_rule() -> None:
    driver = a_driver(profile=a_profile())
    driver.send(TX, a_payment(NOON, amount=Decimal("-5")))
    driver.run()

    [rejection] = driver.rejections
    assert rejection.rule == "invalid_transaction"
    assert driver.results(FLAGGED.name) == []


def test_a_transaction_later_than_the_grace_is_late_not_judged() -> None:
    driver = a_driver(profile=a_profile())
    on_time = [a_payment(NOON + minutes(i)) for i in range(5)]
    driver.send_all(TX, on_time)
    # The watermark is the older of the two topics' times: NOON + 4 min.
    driver.send(OUTCOME_TOPIC, an_outcome(on_time[-1], OutcomeKind.AUTHORISED, minutes(1)))
    driver.run()
    # Older than the watermark minus the grace: its window has closed.
    # The watermark is at NOON + 4 min; this one is 2 minutes older than that minus grace.
    late = a_payment(NOON + minutes(2) - GRACE - timedelta(seconds=1))
    driver.send(TX, late)
    driver.run()

    assert [entry.step for entry in driver.late if entry.item.value == late] == ["account-activity"]


def test_a_late_but_within_grace_payment_still_counts_for_velocity() -> None:
    driver = a_driver(profile=a_profile())
    payments = [a_payment(NOON + minutes(i)) for i in (0, 1, 2, 4)]
    driver.send_all(TX, payments)
    driver.send(OUTCOME_TOPIC, an_outcome(payments[-1], OutcomeKind.AUTHORISED, minutes(1)))
    driver.run()
    # 20 s older than the watermark (NOON + 4 min): within the 30 s grace.
    straggler = a_payment(NOON + minutes(4) - timedelta(seconds=20))
    driver.send(TX, straggler)
    driver.run()
    driver.set_time(NOON + timedelta(hours=3))
    driver.advance(IDLE)

    # The last payment's five minutes hold five payments with the straggler, four without.
    assert reasons_of(driver) == {payments[-1].transaction_id: (FraudRule.VELOCITY,)}
    assert driver.late == []


# -- outcomes -----------------------------------------------------------------------------


def test_a_transaction_is_stored_with_each_of_its_outcomes_not_its_neighbours() -> None:
    driver = a_driver(profile=a_profile())
    first, second = a_payment(NOON), a_payment(NOON + minutes(1))
    driver.send_all(TX, [first, second])
    driver.send_all(
        OUTCOME_TOPIC,
        [
            an_outcome(first, OutcomeKind.AUTHORISED, timedelta(seconds=2)),
            an_outcome(second, OutcomeKind.DECLINED, timedelta(seconds=1)),
            an_outcome(first, OutcomeKind.CHARGEBACK, minutes(90)),
        ],
    )
    driver.run()
    driver.set_time(NOON + timedelta(hours=4))
    driver.advance(IDLE)

    rows = {(o.transaction_id, o.outcome) for o in driver.results(OUTCOMES.name)}
    assert rows == {
        (first.transaction_id, "authorised"),
        (first.transaction_id, "chargeback"),
        (second.transaction_id, "declined"),
    }


def test_a_transaction_without_an_outcome_within_two_hours_is_stored_with_none() -> None:
    driver = a_driver(profile=a_profile())
    tx = a_payment(NOON)
    driver.send(TX, tx)
    driver.send(OUTCOME_TOPIC, an_outcome(tx, OutcomeKind.CHARGEBACK, minutes(150)))
    driver.run()
    driver.set_time(NOON + timedelta(hours=4))
    driver.advance(IDLE)

    assert driver.results(OUTCOMES.name) == [
        TransactionOutcome(
            transaction_id=tx.transaction_id,
            account_id=ACCOUNT,
            amount=tx.amount,
            currency="EUR",
            transaction_time=NOON,
            outcome=NO_OUTCOME,
        )
    ]


def test_a_transaction_that_met_only_its_accounts_other_outcomes_is_stored_with_none() -> None:
    driver = a_driver(profile=a_profile())
    first, second = a_payment(NOON), a_payment(NOON + minutes(1))
    driver.send_all(TX, [first, second])
    driver.send(OUTCOME_TOPIC, an_outcome(second, OutcomeKind.AUTHORISED, timedelta(seconds=1)))
    driver.run()
    driver.set_time(NOON + timedelta(hours=4))
    driver.advance(IDLE)

    rows = [(o.transaction_id, o.outcome) for o in driver.results(OUTCOMES.name)]
    assert sorted(rows) == sorted(
        [(first.transaction_id, NO_OUTCOME), (second.transaction_id, "authorised")]
    )


def test_the_three_topics_are_joined_only_when_co_partitioned() -> None:
    plan = payments_job(PaymentsJobConfig()).plan()

    assert plan.copartitioned_topics() == (("accounts", "payment-outcomes", "transactions"),)


def test_a_flagged_row_carries_the_transaction() -> None:
    home = a_payment(NOON)
    abroad = a_payment(NOON + timedelta(hours=1), country="BR", merchant="grocery-br-001")

    driver = closed(a_driver(profile=a_profile()), home, abroad)

    assert driver.results(FLAGGED.name) == [
        FlaggedTransaction(
            transaction_id=abroad.transaction_id,
            account_id=ACCOUNT,
            amount=abroad.amount,
            currency="EUR",
            merchant="grocery-br-001",
            country="BR",
            channel=Channel.POINT_OF_SALE,
            timestamp=abroad.timestamp,
            reasons=(FraudRule.IMPOSSIBLE_TRAVEL,),
            score=0.9,
        )
    ]


def test_settings_that_make_no_sense_are_a_configuration_error_naming_them() -> None:
    settings = Settings(payments=PaymentsSettings(velocity_window_s=2 * 86_400.0))

    with pytest.raises(ConfigurationError, match="PIPELINE_PAYMENTS__"):
        payments_config(settings)


def test_the_settings_reach_the_rules() -> None:
    settings = Settings(payments=PaymentsSettings(velocity_count=9, night_end_hour=4.0))

    rules = payments_config(settings).rules

    assert (rules.velocity_count, rules.night_hours) == (9, (0.0, 4.0))


def test_the_payment_sources_late_dead_letter_and_retry_topics_are_created() -> None:
    names = {spec.name for spec in topic_specs(Settings())}

    assert {
        "transactions.dlq",
        "transactions.late",
        "transactions.retry.1",
        "payment-outcomes.dlq",
        "payment-outcomes.late",
        "accounts.dlq",
    } <= names
