"""The sensors job with anomaly scoring, on the deterministic driver."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from pipeline.adapters.model import FilesystemModelStore, ZScoreModel, trainer_for
from pipeline.application.generators.base import Generated
from pipeline.application.generators.sensors import SensorFleetConfig, generate_readings
from pipeline.application.ports.model import Scored
from pipeline.application.scoring import LiveModel, Retrainer, RetrainPolicy
from pipeline.domain import Alert, Reading
from pipeline.domain.alerts import AlertKind, Detector
from pipeline.jobs.sensor_anomalies import FEATURE_STEP
from pipeline.jobs.sensor_points import ANOMALY_MEASUREMENT, ANOMALY_POINTS
from pipeline.jobs.sensors import ALERTS, SensorJobConfig, sensor_job
from pipeline.streams.testing import TestDriver
from tests.unit.anomalies.builders import FEATURES, T0

TOPIC = "sensor-readings"
ZSCORE = FEATURES.index("zscore")


def fleet(events: int) -> list[Generated[Reading]]:
    config = SensorFleetConfig(sensors=12, anomaly_rate=0.01, gap_rate=0.0)
    return list(itertools.islice(generate_readings(seed=3, start=T0, config=config), events))


def driver_for(live: LiveModel, readings: Sequence[Reading]) -> TestDriver:
    job = sensor_job(SensorJobConfig(topic=TOPIC, scoring=live))
    driver = TestDriver(job, partitions=2, now=readings[-1].timestamp + timedelta(seconds=1))
    driver.send_all(TOPIC, readings)
    return driver


def ml_alerts(driver: TestDriver) -> list[Alert]:
    return [a for a in driver.results(ALERTS.name) if a.detector is Detector.ML]


class Counting:
    """A model that remembers how many rows each call scored."""

    kind = "zscore"

    def __init__(self, model: ZScoreModel) -> None:
        self.model = model
        self.version = model.version
        self.calls: list[int] = []

    def score(self, rows: Sequence[Sequence[float]]) -> Scored:
        self.calls.append(len(rows))
        return self.model.score(rows)


def test_injected_spikes_are_raised_as_ml_alerts_with_the_model_version() -> None:
    generated = fleet(6_000)
    readings = [g.event for g in generated]
    driver = driver_for(LiveModel(ZScoreModel("z-test", ZSCORE)), readings)

    driver.run(batch_size=500)

    alerts = ml_alerts(driver)
    flagged = {(a.source, a.timestamp) for a in alerts}
    spikes = [g.event.key for g in generated if g.label is not None and g.label.kind == "spike"]
    assert spikes
    assert all(key in flagged for key in spikes[2:])
    assert {a.model_version for a in alerts} == {"z-test"}
    assert all(a.kind is AlertKind.ANOMALY and a.score is not None for a in alerts)
    assert all(tuple(a.features) == FEATURES for a in alerts)
    assert len({a.alert_id for a in alerts}) == len(alerts)


def test_a_batch_is_scored_in_one_call_per_partition_batch() -> None:
    readings = [g.event for g in fleet(3_000)]
    counting = Counting(ZScoreModel("z-test", ZSCORE))
    driver = driver_for(LiveModel(counting), readings)

    driver.run(batch_size=1_000)

    assert len(counting.calls) == 3
    assert sum(counting.calls) == 3_000 - 12 * 30  # every reading after each sensor's warm-up


async def test_retraining_swaps_models_between_batches_without_losing_or_rescoring(
    tmp_path: Path,
) -> None:
    generated = fleet(9_000)
    readings, more = [g.event for g in generated[:6_000]], [g.event for g in generated[6_000:]]
    scored: Counter[str] = Counter()
    live = LiveModel(
        ZScoreModel("z-first", ZSCORE),
        sample_size=5_000,
        on_scored=lambda _seconds, rows, version: scored.update({version: rows}),
    )
    driver = driver_for(live, readings)
    retrainer = Retrainer(
        live,
        trainer_for("zscore", features=FEATURES, contamination=0.03),
        FilesystemModelStore(tmp_path, namespace="sensors"),
        features=FEATURES,
        policy=RetrainPolicy(min_sample=500, contamination=0.03),
    )
    driver.run(batch_size=1_000)

    info = await retrainer.retrain()
    driver.set_time(more[-1].timestamp + timedelta(seconds=1))
    driver.send_all(TOPIC, more)
    driver.run(batch_size=1_000)

    assert info is not None
    assert info.accepted
    assert scored == {"z-first": 6_000 - 12 * 30, info.version: 3_000}
    late = {a.model_version for a in ml_alerts(driver) if a.timestamp > readings[-1].timestamp}
    assert late <= {info.version}
    ids = [a.alert_id for a in ml_alerts(driver)]
    assert len(ids) == len(set(ids))


def test_with_a_time_series_each_flagged_reading_is_also_an_anomaly_point() -> None:
    readings = [g.event for g in fleet(3_000)]
    job = sensor_job(
        SensorJobConfig(
            topic=TOPIC, scoring=LiveModel(ZScoreModel("z-test", ZSCORE)), timeseries=True
        )
    )
    driver = TestDriver(job, partitions=2, now=readings[-1].timestamp + timedelta(seconds=1))
    driver.send_all(TOPIC, readings)

    driver.run(batch_size=500)

    alerts = ml_alerts(driver)
    points = driver.results(ANOMALY_POINTS.name)
    assert alerts
    assert sorted((p.tags["sensor_id"], p.time) for p in points) == sorted(
        (a.source, a.timestamp) for a in alerts
    )
    assert {p.measurement for p in points} == {ANOMALY_MEASUREMENT}
    assert all(p.fields["model_version"] == "z-test" and p.fields["score"] > 0 for p in points)


def test_a_restore_mid_stream_gives_the_same_features_and_alerts() -> None:
    readings = [g.event for g in fleet(6_000)]
    steady = driver_for(LiveModel(ZScoreModel("z-test", ZSCORE)), readings)
    steady.run(batch_size=700)
    job = sensor_job(SensorJobConfig(topic=TOPIC, scoring=LiveModel(ZScoreModel("z-test", ZSCORE))))
    interrupted = TestDriver(job, partitions=2, now=readings[-1].timestamp + timedelta(seconds=1))
    interrupted.send_all(TOPIC, readings[:2_500])
    interrupted.run(batch_size=700)
    interrupted.send_all(TOPIC, readings[2_500:])
    interrupted.run(batch_size=700, commit=False)  # computed, never checkpointed
    interrupted.crash()
    interrupted.rebalance(revoke=[1], assign=[1])
    interrupted.run(batch_size=300)

    def by_id(driver: TestDriver) -> dict[str, tuple[float | None, dict[str, float] | None]]:
        return {a.alert_id: (a.score, a.features) for a in ml_alerts(driver)}

    assert by_id(steady)
    assert by_id(interrupted) == by_id(steady)
    for part in (0, 1):
        assert interrupted.state(FEATURE_STEP, part) == steady.state(FEATURE_STEP, part)
