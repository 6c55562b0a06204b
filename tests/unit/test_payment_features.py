"""Model scoring in the payments job: a transaction's features from a small hand-made account
history, and the scoring step raising one `anomaly` alert (domain payments, model version,
features) per transaction the model flags — and none when the job has no model."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipeline.application.ports.model import Scored
from pipeline.application.scoring import LiveModel
from pipeline.domain import Alert, AlertDomain, AlertKind, Channel, Transaction
from pipeline.domain.alerts import Detector
from pipeline.domain.fraud import FraudRules
from pipeline.domain.payments import AccountProfile
from pipeline.jobs.payment_features import PAYMENT_FEATURES, anomaly_alert_id, payment_features
from pipeline.jobs.payments import ALERTS, PaymentsJobConfig, payments_job
from pipeline.streams.testing import TestDriver

# 01:30 UTC is 02:30 in Germany (UTC+1 in the geography table): night at home.
AT = datetime(2026, 11, 30, 1, 30, tzinfo=UTC)
ACCOUNT = "acct-000042"
RULES = FraudRules()


def a_profile(**changes: Any) -> AccountProfile:
    profile = AccountProfile(
        account_id=ACCOUNT,
        home_country="DE",
        currency="EUR",
        segment="everyday",
        typical_amount=Decimal("50.00"),
        usual_categories=("grocery", "fuel"),
        timestamp=AT - timedelta(days=30),
    )
    return dataclasses.replace(profile, **changes)


def a_payment(minutes_before: float, amount: str, **changes: Any) -> Transaction:
    at = AT - timedelta(minutes=minutes_before)
    tx = Transaction(
        transaction_id=f"tx-{ACCOUNT}-{at.isoformat()}",
        account_id=ACCOUNT,
        amount=Decimal(amount),
        currency="EUR",
        merchant="grocery-de-001",
        country="DE",
        channel=Channel.POINT_OF_SALE,
        timestamp=at,
        merchant_category="grocery",
    )
    return dataclasses.replace(tx, **changes)


def features_of(
    tx: Transaction, history: Sequence[Transaction], profile: AccountProfile | None
) -> dict[str, float]:
    return dict(zip(PAYMENT_FEATURES, payment_features(tx, history, profile, RULES), strict=True))


# Five payments at home: amounts 40 60 40 60 50 (mean 50, σ √80), the last two within the
# velocity window (5 minutes) of the one judged, the last card-present one 60 minutes before.
HISTORY = [
    a_payment(300, "40.00"),
    a_payment(240, "60.00"),
    a_payment(60, "40.00"),
    a_payment(4, "60.00", channel=Channel.ONLINE, country="DE"),
    a_payment(2, "50.00", channel=Channel.MOBILE),
]


def test_a_card_present_payment_abroad_at_night_at_a_new_category_has_the_expected_features() -> (
    None
):
    tx = a_payment(0, "100.00", country="US", merchant_category="electronics")

    f = features_of(tx, HISTORY, a_profile())

    assert f["amount_ratio"] == pytest.approx(math.log(100 / 50))
    assert f["zscore"] == pytest.approx((100 - 50) / math.sqrt(80))
    assert f["velocity"] == 3.0  # the two of the last 5 minutes and this one
    assert f["probes"] == 0.0
    hour = 2.5  # 01:30 UTC in Germany
    assert f["hour_sin"] == pytest.approx(math.sin(2 * math.pi * hour / 24))
    assert f["hour_cos"] == pytest.approx(math.cos(2 * math.pi * hour / 24))
    assert f["new_category"] == 1.0
    assert f["away"] == 1.0
    # Germany → United States (about 7,900 km between the table's centroids) in one hour.
    assert 10 ** f["speed"] - 1 == pytest.approx(7_900, rel=0.05)


def test_a_usual_payment_at_home_has_no_trip_no_new_category_and_a_small_zscore() -> None:
    tx = a_payment(0, "50.00")

    f = features_of(tx, HISTORY, a_profile())

    assert f["amount_ratio"] == 0.0
    assert f["zscore"] == 0.0
    assert (f["new_category"], f["away"], f["speed"]) == (0.0, 0.0, 0.0)


def test_tiny_online_payments_count_as_probes_not_velocity() -> None:
    probes = [a_payment(m, "2.00", channel=Channel.ONLINE) for m in (3, 2, 1)]
    tx = a_payment(0, "1.00", channel=Channel.ONLINE)

    f = features_of(tx, [*HISTORY, *probes], a_profile())

    assert (f["probes"], f["velocity"]) == (4.0, 0.0)


def test_without_profile_or_history_the_account_dependent_features_are_neutral() -> None:
    tx = a_payment(0, "100.00", country="US", merchant_category="electronics")

    f = features_of(tx, [], None)

    assert f == {
        "amount_ratio": 0.0, "zscore": 0.0, "velocity": 1.0, "probes": 0.0, "hour_sin": 0.0,
        "hour_cos": 0.0, "new_category": 0.0, "away": 0.0, "speed": 0.0,
    }  # fmt: skip


def test_a_flat_history_makes_a_different_amount_as_extreme_as_the_clip() -> None:
    flat = [a_payment(60 * i, "50.00") for i in range(5, 0, -1)]

    assert features_of(a_payment(0, "51.00"), flat, a_profile())["zscore"] == 50.0


# -- the scoring step in the job ----------------------------------------------------------


class AboveAmount:
    """A model flagging rows whose amount ratio is above 1 (e^1 × the typical amount)."""

    version = "test-model-7"
    kind = "test"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def score(self, rows: Sequence[Sequence[float]]) -> Scored:
        self.batches.append(len(rows))
        scores = [row[0] for row in rows]
        return Scored(scores=scores, anomalous=[s > 1.0 for s in scores])


def run(config: PaymentsJobConfig, payments: Sequence[Transaction]) -> TestDriver:
    driver = TestDriver(payments_job(config), partitions=1, now=AT)
    driver.send("accounts", a_profile(usual_categories=("grocery", "fuel", "electronics")))
    driver.send_all("transactions", payments)
    driver.run()
    driver.set_time(AT + timedelta(hours=3))
    driver.advance(timedelta(minutes=1))
    return driver


def test_the_model_scores_every_judged_transaction_and_alerts_on_those_it_flags() -> None:
    model = AboveAmount()
    big = a_payment(0, "400.00")
    payments = [*HISTORY, big]

    driver = run(PaymentsJobConfig(scoring=LiveModel(model)), payments)

    anomalies = [a for a in driver.results(ALERTS.name) if a.kind is AlertKind.ANOMALY]
    assert sum(model.batches) == len(payments)
    [alert] = anomalies
    assert isinstance(alert, Alert)
    assert alert.alert_id == anomaly_alert_id(big)
    assert (alert.domain, alert.detector, alert.source) == (
        AlertDomain.PAYMENTS,
        Detector.ML,
        ACCOUNT,
    )
    assert alert.model_version == "test-model-7"
    assert alert.features["amount_ratio"] == pytest.approx(math.log(8))
    assert alert.score == pytest.approx(math.log(8))
    assert set(alert.features) == set(PAYMENT_FEATURES)


def test_without_a_model_the_job_raises_no_anomaly_alerts() -> None:
    driver = run(PaymentsJobConfig(), [*HISTORY, a_payment(0, "400.00")])

    assert all(a.kind is not AlertKind.ANOMALY for a in driver.results(ALERTS.name))
