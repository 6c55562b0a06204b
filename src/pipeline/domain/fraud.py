"""Fraud rules on payment transactions, and what the payments job records of each.

Each rule looks at one transaction, the account's earlier transactions of the last
`FraudRules.lookback` (event time, oldest first) and the account's profile (None when the
bank has none yet), and says whether it fires:

    velocity            ≥ `velocity_count` payments, tiny ones not counted, within
                        `velocity_window`, this one included
    card_testing        ≥ `card_testing_count` tiny online payments (≤ `tiny_fraction` of
                        the typical amount) within `card_testing_window`, this one included
    impossible_travel   a card-present payment away from home in a country further from
                        the previous card-present payment than `max_speed_kmh` allows for
                        the time between them
    amount_spike        ≥ `amount_factor` × the typical amount, and more than
                        `amount_sigmas` standard deviations above the mean of the account's
                        recent payments (when it has at least `min_history` of them)
    night_new_category  between `night_hours` local time (home country) at a merchant
                        category that is neither usual for the account nor in its recent
                        payments

The typical amount is the profile's, else the median of the recent payments (at least
`min_history`); without either the rules that need it do not fire. A flagged transaction's
score is 1 − Π(1 − weight) over the rules that fired: one rule gives its weight, more rules
more.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from pipeline.domain.alerts import Alert, AlertDomain, AlertKind, Severity, alert_id_for
from pipeline.domain.geography import (
    COUNTRIES,
    MAX_TRAVEL_SPEED_KMH,
    distance_km,
    local_hour,
)
from pipeline.domain.payments import (
    CARD_PRESENT,
    AccountProfile,
    Channel,
    PaymentOutcome,
    Transaction,
)


class FraudRule(StrEnum):
    """A fraud rule (named like the pattern it detects)."""

    VELOCITY = "velocity"
    CARD_TESTING = "card_testing"
    IMPOSSIBLE_TRAVEL = "impossible_travel"
    AMOUNT_SPIKE = "amount_spike"
    NIGHT_NEW_CATEGORY = "night_new_category"


DEFAULT_WEIGHTS: Mapping[FraudRule, float] = MappingProxyType(
    {
        FraudRule.VELOCITY: 0.6,
        FraudRule.CARD_TESTING: 0.9,
        FraudRule.IMPOSSIBLE_TRAVEL: 0.9,
        FraudRule.AMOUNT_SPIKE: 0.8,
        FraudRule.NIGHT_NEW_CATEGORY: 0.5,
    }
)
"""How strongly each rule alone points to fraud (the score of a transaction it flags)."""
CRITICAL_SCORE = 0.9
"""A flagged transaction scoring at least this raises a critical alert, else a warning."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FraudRules:
    """The parameters of the fraud rules."""

    lookback: timedelta = timedelta(hours=24)
    """How much of an account's history the rules see."""
    velocity_window: timedelta = timedelta(minutes=5)
    velocity_count: int = 5
    card_testing_window: timedelta = timedelta(minutes=5)
    card_testing_count: int = 3
    tiny_fraction: float = 0.4
    """A payment of at most this fraction of the typical amount is tiny."""
    max_speed_kmh: float = MAX_TRAVEL_SPEED_KMH
    amount_factor: float = 10.0
    amount_sigmas: float = 4.0
    min_history: int = 5
    night_hours: tuple[float, float] = (0.0, 5.0)
    weights: Mapping[FraudRule, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)

    def __post_init__(self) -> None:
        windows = (self.velocity_window, self.card_testing_window)
        if any(w <= timedelta(0) or w > self.lookback for w in windows):
            raise ValueError("the rules' windows must be positive and within the lookback")
        if min(self.velocity_count, self.card_testing_count, self.min_history) < 1:
            raise ValueError("the rules' counts must be at least 1")
        if not 0.0 <= self.night_hours[0] < self.night_hours[1] <= 24.0:
            raise ValueError("night hours must be a range within 0–24 (start before end)")
        if not 0.0 < self.tiny_fraction < 1.0 or self.amount_factor <= 1.0:
            raise ValueError("tiny_fraction must be in (0, 1) and amount_factor above 1")
        if set(self.weights) != set(FraudRule) or not all(
            0.0 < w <= 1.0 for w in self.weights.values()
        ):
            raise ValueError("every rule needs a weight in (0, 1]")


def typical_amount(
    profile: AccountProfile | None, history: Sequence[Transaction], rules: FraudRules
) -> Decimal | None:
    """The account's typical payment: its profile's, else the median of its recent ones."""
    if profile is not None:
        return profile.typical_amount
    if len(history) >= rules.min_history:
        return Decimal(statistics.median(tx.amount for tx in history))
    return None


def fired_rules(
    tx: Transaction,
    history: Sequence[Transaction],
    profile: AccountProfile | None,
    rules: FraudRules,
) -> tuple[FraudRule, ...]:
    """The rules `tx` breaks, given the account's earlier payments within the lookback
    (oldest first) and its profile."""
    typical = typical_amount(profile, history, rules)
    fired: list[FraudRule] = []
    if _velocity(tx, history, typical, rules):
        fired.append(FraudRule.VELOCITY)
    if _card_testing(tx, history, typical, rules):
        fired.append(FraudRule.CARD_TESTING)
    if _impossible_travel(tx, history, profile, rules):
        fired.append(FraudRule.IMPOSSIBLE_TRAVEL)
    if _amount_spike(tx, history, typical, rules):
        fired.append(FraudRule.AMOUNT_SPIKE)
    if _night_new_category(tx, history, profile, rules):
        fired.append(FraudRule.NIGHT_NEW_CATEGORY)
    return tuple(fired)


def fraud_score(reasons: Sequence[FraudRule], rules: FraudRules) -> float:
    """1 − Π(1 − weight) over the rules that fired (0 when none did)."""
    clean = 1.0
    for rule in reasons:
        clean *= 1.0 - rules.weights[rule]
    return round(1.0 - clean, 6)


def _tiny(tx: Transaction, typical: Decimal | None, rules: FraudRules) -> bool:
    return typical is not None and float(tx.amount) <= rules.tiny_fraction * float(typical)


def _recent(
    tx: Transaction, history: Sequence[Transaction], window: timedelta
) -> list[Transaction]:
    since = tx.timestamp - window
    return [h for h in history if h.timestamp >= since]


def velocity_count(
    tx: Transaction, history: Sequence[Transaction], typical: Decimal | None, rules: FraudRules
) -> int:
    """The account's payments within the velocity window, this one included, tiny ones not
    counted (0 when `tx` itself is tiny: that is card testing)."""
    if _tiny(tx, typical, rules):
        return 0
    recent = _recent(tx, history, rules.velocity_window)
    return 1 + sum(not _tiny(h, typical, rules) for h in recent)


def probe_count(
    tx: Transaction, history: Sequence[Transaction], typical: Decimal | None, rules: FraudRules
) -> int:
    """The tiny online payments within the card-testing window, this one included (0 when
    `tx` is not one)."""

    def probe(t: Transaction) -> bool:
        return t.channel is Channel.ONLINE and _tiny(t, typical, rules)

    if not probe(tx):
        return 0
    recent = _recent(tx, history, rules.card_testing_window)
    return 1 + sum(probe(h) for h in recent)


def away_card_present(tx: Transaction, profile: AccountProfile | None) -> bool:
    """A card-present payment not known to be at home (no profile: not known)."""
    return tx.channel in CARD_PRESENT and (profile is None or tx.country != profile.home_country)


def travel_speed_kmh(
    tx: Transaction, history: Sequence[Transaction], profile: AccountProfile | None
) -> float | None:
    """How fast the card went from the previous card-present payment's country to this
    card-present payment's, away from home (infinite with no time between them); None when
    there is no such trip (not card-present, at home, no previous one, same country, or a
    country without coordinates)."""
    # Coming home after a trip is not suspicious, however fast: the trip was.
    if not away_card_present(tx, profile):
        return None
    previous = next((h for h in reversed(history) if h.channel in CARD_PRESENT), None)
    if previous is None or previous.country == tx.country:
        return None
    here, there = COUNTRIES.get(tx.country), COUNTRIES.get(previous.country)
    if here is None or there is None:
        return None
    hours = (tx.timestamp - previous.timestamp).total_seconds() / 3600.0
    return math.inf if hours <= 0.0 else distance_km(here, there) / hours


def amount_stats(history: Sequence[Transaction]) -> tuple[float, float]:
    """The mean and (population) standard deviation of the amounts of `history` (not empty)."""
    amounts = [float(h.amount) for h in history]
    return statistics.fmean(amounts), statistics.pstdev(amounts)


def new_category(
    tx: Transaction, history: Sequence[Transaction], profile: AccountProfile | None
) -> bool:
    """A merchant category neither usual for the account (per its profile) nor in its recent
    payments (False without a profile or a category)."""
    category = tx.merchant_category
    if profile is None or category is None or category in profile.usual_categories:
        return False
    return all(h.merchant_category != category for h in history)


def home_hour(tx: Transaction, profile: AccountProfile | None) -> float | None:
    """The hour of day of `tx` in the account's home country (None without a profile or
    when the home country has no coordinates)."""
    home = None if profile is None else COUNTRIES.get(profile.home_country)
    return None if home is None else local_hour(home, tx.timestamp)


def _velocity(
    tx: Transaction, history: Sequence[Transaction], typical: Decimal | None, rules: FraudRules
) -> bool:
    return velocity_count(tx, history, typical, rules) >= rules.velocity_count


def _card_testing(
    tx: Transaction, history: Sequence[Transaction], typical: Decimal | None, rules: FraudRules
) -> bool:
    return probe_count(tx, history, typical, rules) >= rules.card_testing_count


def _impossible_travel(
    tx: Transaction,
    history: Sequence[Transaction],
    profile: AccountProfile | None,
    rules: FraudRules,
) -> bool:
    speed = travel_speed_kmh(tx, history, profile)
    return speed is not None and speed > rules.max_speed_kmh


def _amount_spike(
    tx: Transaction, history: Sequence[Transaction], typical: Decimal | None, rules: FraudRules
) -> bool:
    if typical is None or float(tx.amount) < rules.amount_factor * float(typical):
        return False
    if len(history) < rules.min_history:
        return True
    mean, stddev = amount_stats(history)
    return float(tx.amount) > mean + rules.amount_sigmas * stddev


def _night_new_category(
    tx: Transaction,
    history: Sequence[Transaction],
    profile: AccountProfile | None,
    rules: FraudRules,
) -> bool:
    hour = home_hour(tx, profile)
    start, end = rules.night_hours
    return hour is not None and start <= hour < end and new_category(tx, history, profile)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlaggedTransaction:
    """A transaction at least one fraud rule fired on."""

    transaction_id: str
    account_id: str
    amount: Decimal
    currency: str
    merchant: str
    country: str
    channel: Channel
    timestamp: datetime
    reasons: tuple[FraudRule, ...]
    score: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagReason:
    """One rule that flagged a transaction (a flagged transaction has one per reason)."""

    transaction_id: str
    rule: FraudRule
    timestamp: datetime


def flag_reasons(flagged: FlaggedTransaction) -> tuple[FlagReason, ...]:
    """A flagged transaction's reasons, one by one."""
    return tuple(
        FlagReason(transaction_id=flagged.transaction_id, rule=rule, timestamp=flagged.timestamp)
        for rule in flagged.reasons
    )


def flag(tx: Transaction, reasons: Sequence[FraudRule], rules: FraudRules) -> FlaggedTransaction:
    """`tx` flagged for `reasons` (at least one)."""
    if not reasons:
        raise ValueError(f"transaction {tx.transaction_id}: a flag needs a reason")
    return FlaggedTransaction(
        transaction_id=tx.transaction_id,
        account_id=tx.account_id,
        amount=tx.amount,
        currency=tx.currency,
        merchant=tx.merchant,
        country=tx.country,
        channel=tx.channel,
        timestamp=tx.timestamp,
        reasons=tuple(reasons),
        score=fraud_score(reasons, rules),
    )


def fraud_alert_id(transaction_id: str, timestamp: datetime) -> uuid.UUID:
    """The deterministic id of the fraud alert on a transaction."""
    return alert_id_for(transaction_id, timestamp, AlertKind.FRAUD)


def fraud_alert(flagged: FlaggedTransaction) -> Alert:
    """The one alert a flagged transaction raises."""
    reasons = ", ".join(flagged.reasons)
    return Alert(
        alert_id=fraud_alert_id(flagged.transaction_id, flagged.timestamp),
        source=flagged.account_id,
        kind=AlertKind.FRAUD,
        severity=Severity.CRITICAL if flagged.score >= CRITICAL_SCORE else Severity.WARNING,
        message=(
            f"transaction {flagged.transaction_id} of {flagged.account_id}: {flagged.amount} "
            f"{flagged.currency} at {flagged.merchant} ({flagged.country}, "
            f"{flagged.channel.value}) flagged: {reasons}"
        ),
        timestamp=flagged.timestamp,
        domain=AlertDomain.PAYMENTS,
        value=float(flagged.amount),
        score=flagged.score,
        reasons=tuple(str(r) for r in flagged.reasons),
    )


NO_OUTCOME = "none"
"""The outcome of a transaction none arrived for within the join's interval."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionOutcome:
    """A transaction with one of its later outcomes (authorised, declined, charged back),
    or with none (`outcome` NO_OUTCOME) when none came within the interval."""

    transaction_id: str
    account_id: str
    amount: Decimal
    currency: str
    transaction_time: datetime
    outcome: str
    """An `OutcomeKind` value, or NO_OUTCOME."""
    outcome_time: datetime | None = None
    reason: str | None = None


def transaction_outcome(tx: Transaction, outcome: PaymentOutcome | None) -> TransactionOutcome:
    """The interval join's result: `tx` with `outcome` (None: none came in time)."""
    return TransactionOutcome(
        transaction_id=tx.transaction_id,
        account_id=tx.account_id,
        amount=tx.amount,
        currency=tx.currency,
        transaction_time=tx.timestamp,
        outcome=NO_OUTCOME if outcome is None else outcome.kind.value,
        outcome_time=None if outcome is None else outcome.timestamp,
        reason=None if outcome is None else outcome.reason,
    )
