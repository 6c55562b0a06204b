"""The payments job: card transactions → fraud flags with their reasons and score, fraud
alerts, and each transaction's later outcomes.

    transactions ──validate──┬─ sliding window "account-activity" (the account's last 24 h)
     (rule → DLQ)            │   ─ join accounts (table, left) ─┬─ fraud rules ─┬→ flagged
                             │                                  │               └→ alerts
                             │                                  └─ features, model scoring
                             │                                     (if given) ─→ alerts
                             └─ interval join "outcomes" (left, 0 … 2 h after) ─→ outcomes
    payment-outcomes ──validate──┘
    accounts (compacted) ── table

Every topic is keyed by account id, so the three are co-partitioned and no step re-keys.
The rules (`pipeline.domain.fraud`) are per transaction: each sees the account's payments of
the lookback before it, which the sliding window step keeps in keyed state and hands over,
once, when the transaction's window closes (its time plus `grace` behind the watermark) —
a result that does not depend on batches or arrival order. The account's profile comes from
the `accounts` table as it stands when the window closes (left join: an account with no
profile yet is judged on its history alone).

The interval join pairs a transaction with its own outcomes (authorisation, decline,
chargeback) from its own time to `outcome_window` later — the generator's longest delay, a
chargeback two hours on. The topics are keyed by account (the engine joins by the
partitioning key, and a re-keying before a join is refused), so the join's `matches`
condition keeps only the pairs with the same transaction id: a transaction that met none
of its own, only its account's other outcomes or none at all, leaves alone (`outcome`
"none") once the interval has closed.

Flagged transactions, alerts and outcomes have natural keys (transaction id; alert id,
derived from the transaction; transaction id and outcome), so writing one twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pipeline.application.scoring import LiveModel
from pipeline.domain import Alert, DomainError
from pipeline.domain.fraud import (
    FlaggedTransaction,
    FlagReason,
    FraudRules,
    TransactionOutcome,
    fired_rules,
    flag,
    flag_reasons,
    fraud_alert,
    transaction_outcome,
)
from pipeline.domain.payments import (
    AccountProfile,
    PaymentOutcome,
    Transaction,
    validate_payment_outcome,
    validate_transaction,
)
from pipeline.jobs.payment_features import (
    FeaturedPayment,
    PaymentScoring,
    payment_features,
    present,
)
from pipeline.streams import Collect, Job, Sink, Sliding, Windowed, to_millis

FLAGGED = Sink(
    "flagged_transactions",
    FlaggedTransaction,
    "table flagged_transactions: one row per flagged transaction, with reasons and score",
)
REASONS = Sink(
    "fraud_flag_reasons",
    FlagReason,
    "table fraud_flag_reasons: one row per rule and flagged transaction",
)
ALERTS = Sink("alerts", Alert, "table alerts (outbox to system-alerts)")
OUTCOMES = Sink(
    "transaction_outcomes",
    TransactionOutcome,
    "table transaction_outcomes: per transaction and outcome (or none in time)",
)
ACTIVITY_STEP = "account-activity"
OUTCOMES_STEP = "outcomes"


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentsJobConfig:
    """What the payments job is parameterised by (from settings)."""

    transactions_topic: str = "transactions"
    accounts_topic: str = "accounts"
    outcomes_topic: str = "payment-outcomes"
    rules: FraudRules = field(default_factory=FraudRules)
    grace: timedelta = timedelta(seconds=30)
    """How late (behind the partition's watermark) a transaction or outcome may arrive."""
    outcome_window: timedelta = timedelta(hours=2)
    idle_timeout: timedelta = timedelta(seconds=30)
    scoring: LiveModel | None = None
    """The model that scores every judged transaction (`pipeline.jobs.payment_features`;
    None: the rules alone)."""


@dataclass(frozen=True, slots=True)
class Activity:
    """The account's payments of the lookback up to and including the ones at the window's
    end (the transactions the rules judge), oldest first, and its profile."""

    payments: list[Transaction]
    end_ms: int
    profile: AccountProfile | None

    def judged(self) -> list[tuple[Transaction, list[Transaction]]]:
        """The transactions at the window's end, each with the payments before it."""
        return [
            (tx, self.payments[:at])
            for at, tx in enumerate(self.payments)
            if to_millis(tx.timestamp) == self.end_ms
        ]


def payments_job(config: PaymentsJobConfig) -> Job:
    """The payments job over the configured topics."""
    job = Job(
        "payments",
        idle_timeout=config.idle_timeout,
        description="transactions → fraud flags and alerts, outcomes per transaction",
    )
    rules = config.rules

    def judge(activity: Activity) -> list[FlaggedTransaction]:
        flagged: list[FlaggedTransaction] = []
        for tx, history in activity.judged():
            reasons = fired_rules(tx, history, activity.profile, rules)
            if reasons:
                flagged.append(flag(tx, reasons, rules))
        return flagged

    def features(activity: Activity) -> list[FeaturedPayment]:
        return [
            FeaturedPayment(tx, payment_features(tx, history, activity.profile, rules))
            for tx, history in activity.judged()
        ]

    transactions = job.source(
        config.transactions_topic,
        Transaction,
        key=lambda tx: tx.account_id,
        event_time=lambda tx: tx.timestamp,
    )
    outcomes = job.source(
        config.outcomes_topic,
        PaymentOutcome,
        key=lambda outcome: outcome.account_id,
        event_time=lambda outcome: outcome.timestamp,
    )
    accounts = job.table(config.accounts_topic, AccountProfile, key=lambda p: p.account_id)
    valid = transactions.validate(
        validate_transaction, rejects=(DomainError,), name="transaction rules"
    )
    valid_outcomes = outcomes.validate(
        validate_payment_outcome, rejects=(DomainError,), name="outcome rules"
    )
    activities = (
        valid.window(Sliding(size=rules.lookback, grace=config.grace), step=ACTIVITY_STEP)
        .aggregate(Collect[Transaction, Transaction]())
        .final()
        .join_table(accounts, _activity, how="left", name="profiles")
    )
    flagged = activities.flat_map(judge, name="fraud rules")
    flagged.to(FLAGGED)
    flagged.flat_map(flag_reasons, name="reasons").to(REASONS)
    flagged.map(fraud_alert, name="fraud alerts").to(ALERTS)
    if config.scoring is not None:
        (
            activities.flat_map(features, name="payment features")
            .map_batch(PaymentScoring(config.scoring), name="payment scoring")
            .flat_map(present, name="payment anomalies")
            .to(ALERTS)
        )
    (
        valid.join(
            valid_outcomes,
            transaction_outcome,
            before=timedelta(0),
            after=config.outcome_window,
            grace=config.grace,
            how="left",
            step=OUTCOMES_STEP,
            matches=_own_outcome,
        ).to(OUTCOMES)
    )
    return job


def _activity(window: Windowed[str, list[Transaction]], profile: AccountProfile | None) -> Activity:
    return Activity(window.value, window.window.end - 1, profile)


def _own_outcome(tx: Transaction, outcome: PaymentOutcome) -> bool:
    """Whether an outcome of the transaction's account is about this transaction."""
    return outcome.transaction_id == tx.transaction_id
