"""AlertRaised v2 evolves v1 compatibly: alerts of every stream, with a model's or rules'
details, round-trip through v2, and a v1 alert (all were sensor threshold alerts) reads as v2
with the sensors stream and no details."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pipeline.adapters.avro import ALERT_RAISED, ALERT_RAISED_V1, compatibility_problem
from pipeline.adapters.avro.mapping import alert_from_avro, alert_to_avro
from pipeline.adapters.avro.schemas import load_schema
from pipeline.domain.alerts import Alert, AlertDomain, AlertKind, Detector, Severity
from tests.avro_events import rewritten

AT = datetime(2026, 11, 30, 1, 30, 0, 123456, tzinfo=UTC)


def test_v2_is_backward_compatible_with_v1() -> None:
    assert (
        compatibility_problem("BACKWARD", load_schema(ALERT_RAISED), [load_schema(ALERT_RAISED_V1)])
        is None
    )


def test_an_ml_alert_round_trips_with_its_score_model_and_features() -> None:
    alert = Alert(
        alert_id=uuid.uuid4(),
        source="temp-0007",
        kind=AlertKind.ANOMALY,
        severity=Severity.WARNING,
        message="anomalous reading",
        timestamp=AT,
        sensor_type="temperature",
        value=81.25,
        score=0.74,
        model_version="iforest-12",
        features={"value": 81.25, "zscore": 5.5, "hour_sin": -0.5},
    )

    read = alert_from_avro(rewritten(alert_to_avro(alert), ALERT_RAISED, ALERT_RAISED))

    assert read == alert
    assert read.detector is Detector.ML


def test_a_fraud_alert_round_trips_with_its_stream_and_reasons() -> None:
    alert = Alert(
        alert_id=uuid.uuid4(),
        source="acct-42",
        kind=AlertKind.FRAUD,
        severity=Severity.CRITICAL,
        message="velocity and impossible travel",
        timestamp=AT,
        domain=AlertDomain.PAYMENTS,
        score=0.9,
        reasons=("velocity", "impossible_travel"),
    )

    read = alert_from_avro(rewritten(alert_to_avro(alert), ALERT_RAISED, ALERT_RAISED))

    assert read == alert
    assert read.detector is Detector.RULE


def test_a_v1_alert_reads_as_a_sensor_threshold_alert_without_details() -> None:
    v1 = {
        "alert_id": str(uuid.uuid4()),
        "source": "temp-0001",
        "kind": "threshold_high",
        "severity": "critical",
        "message": "too hot",
        "timestamp": 1_700_000_000_000_000,
        "sensor_type": "temperature",
        "value": 75.0,
        "threshold": 70.0,
    }

    read = alert_from_avro(rewritten(v1, ALERT_RAISED_V1, ALERT_RAISED))

    assert read.domain is AlertDomain.SENSORS
    assert read.detector is Detector.THRESHOLD
    assert (read.score, read.reasons, read.model_version, dict(read.features)) == (
        None,
        (),
        None,
        {},
    )
