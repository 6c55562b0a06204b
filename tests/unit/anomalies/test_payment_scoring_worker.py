"""The payments job in a worker scores with the `payments` family's current model: with
`PIPELINE_PAYMENTS__SCORING` on, the worker's wiring (the family's store namespace, its
starting model, the job registry's scored build) raises `anomaly` alerts carrying that
model's version beside the rules' fraud alerts, on the deterministic driver."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pipeline.adapters.model import FilesystemModelStore, ZScoreModel
from pipeline.application.generators.payments import PaymentsConfig
from pipeline.application.ports.model import ModelInfo
from pipeline.application.telemetry import NullTelemetry
from pipeline.domain import Alert, AlertDomain, AlertKind, Transaction
from pipeline.domain.alerts import Detector
from pipeline.domain.payments import AccountProfile
from pipeline.entrypoints.jobs import JOBS, payments_config
from pipeline.entrypoints.models import FAMILIES, anomaly_scoring
from pipeline.entrypoints.settings import AnomalySettings, PaymentsSettings, Settings
from pipeline.jobs.payment_features import PAYMENT_FEATURES
from pipeline.jobs.payments import ALERTS
from pipeline.jobs.payments_evaluation import EVALUATION_START, labelled_stream
from pipeline.streams.testing import TestDriver


def settings_with(store_dir: Path, *, scoring: bool) -> Settings:
    return Settings(
        anomaly=AnomalySettings(store_dir=store_dir),
        payments=PaymentsSettings(scoring=scoring),
    )


def store_model(store_dir: Path, namespace: str, version: str, threshold: float) -> None:
    model = ZScoreModel(version, PAYMENT_FEATURES.index("zscore"), threshold=threshold)
    info = ModelInfo(
        version=version,
        kind=model.kind,
        trained_at=datetime(2026, 11, 30, tzinfo=UTC),
        sample_size=1_000,
        features=PAYMENT_FEATURES,
        contamination=0.04,
    )
    asyncio.run(FilesystemModelStore(store_dir, namespace=namespace).save(model, info))


def alerts_of(settings: Settings) -> Sequence[Alert]:
    async def scored_job_alerts() -> list[Alert]:
        family = FAMILIES["payments"]
        async with anomaly_scoring(settings, NullTelemetry(), family) as live:
            scored = JOBS["payments"].scored
            assert scored is not None
            config = payments_config(settings)
            driver = TestDriver(scored(settings, live), partitions=2, now=EVALUATION_START)
            stream = labelled_stream(
                events=3_000, seed=3, config=PaymentsConfig(events_per_second=4.0, fraud_rate=0.02)
            )
            last = EVALUATION_START
            for g in stream:
                event = g.event
                if isinstance(event, Transaction):
                    driver.send(config.transactions_topic, event)
                    last = event.timestamp
                elif isinstance(event, AccountProfile):
                    driver.send(config.accounts_topic, event)
                else:
                    driver.send(config.outcomes_topic, event)
            driver.run()
            driver.set_time(last + config.outcome_window + config.rules.lookback)
            driver.advance(config.idle_timeout + config.grace)
            return [a for a in driver.results(ALERTS.name) if isinstance(a, Alert)]

    return asyncio.run(scored_job_alerts())


def test_scoring_is_a_setting_of_each_model_family(tmp_path: Path) -> None:
    on = settings_with(tmp_path, scoring=True)

    assert FAMILIES["payments"].enabled(on)
    assert not FAMILIES["sensors"].enabled(on)
    assert not FAMILIES["payments"].enabled(settings_with(tmp_path, scoring=False))


def test_the_worker_scores_payments_with_the_payments_namespace_model(tmp_path: Path) -> None:
    store_model(tmp_path, "sensors", "sensors-z9", threshold=0.5)
    store_model(tmp_path, "payments", "payments-z1", threshold=4.0)

    alerts = alerts_of(settings_with(tmp_path, scoring=True))

    ml = [a for a in alerts if a.detector is Detector.ML]
    rules = [a for a in alerts if a.detector is Detector.RULE]
    assert ml, "the payments model flagged nothing"
    assert rules, "the rules flagged nothing"
    assert {a.model_version for a in ml} == {"payments-z1"}
    assert {(a.kind, a.domain) for a in ml} == {(AlertKind.ANOMALY, AlertDomain.PAYMENTS)}
    assert len({a.alert_id for a in ml}) == len(ml)
    assert all(a.score is not None and a.score > 4.0 for a in ml)
    assert all(set(a.features) == set(PAYMENT_FEATURES) for a in ml)
