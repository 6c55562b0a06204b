"""End to end on the real stack with anomaly scoring on: labelled readings → Kafka → the
sensors worker scoring with an Isolation Forest from the database model store → model alerts
in the alerts table and on the alerts topic, checked against the labels."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.model import trainer_for
from pipeline.application.generators.production import planned_readings
from pipeline.application.generators.sensors import SensorFleetConfig
from pipeline.application.ports.model import ModelInfo
from pipeline.domain import DEFAULT_CATALOG
from pipeline.domain.alerts import Detector
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.evaluate_sensors import generated_readings, training_sample
from pipeline.entrypoints.models import model_store
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import AnomalySettings, Settings
from pipeline.entrypoints.worker import run_named_job
from pipeline.jobs.sensor_anomalies import WARMUP, feature_names

pytestmark = pytest.mark.integration

SEED, SENSORS, COUNT, ANOMALY_RATE = 11, 20, 6_000, 0.01
SPIKE_RECALL = 0.9
"""The forest finds every spike in `pipeline evaluate sensors`; here at least this share."""


async def store_a_forest(settings: Settings) -> str:
    """Fit a forest on generated readings and promote it in the settings' model store."""
    features = feature_names(DEFAULT_CATALOG)
    sample = training_sample(generated_readings(events=20_000, seed=3, sensors=100), 0.03)
    forest = trainer_for("forest", features=features, contamination=0.03).fit(
        sample, version="forest-e2e"
    )
    async with model_store(settings, "sensors") as store:
        await store.save(
            forest,
            ModelInfo(
                version=forest.version,
                kind=forest.kind,
                trained_at=datetime.now(UTC),
                sample_size=len(sample),
                features=features,
                contamination=0.03,
            ),
        )
        await store.promote(forest.version)
    return forest.version


async def test_labelled_spikes_become_model_alerts_in_the_table_and_on_the_topic(
    settings: Settings,
) -> None:
    settings = settings.model_copy(
        update={"anomaly": AnomalySettings(enabled=True, store="database")}
    )
    now = datetime.now(UTC).replace(microsecond=0)
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    try:
        version = await store_a_forest(settings)
        sent = await produce_sensors(
            pipeline, count=COUNT, rate=0, seed=SEED, sensors=SENSORS, anomaly_rate=ANOMALY_RATE
        )
        assert sent == COUNT

        await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 180)

        fleet = SensorFleetConfig(sensors=SENSORS, anomaly_rate=ANOMALY_RATE)
        generated = list(planned_readings(seed=SEED, now=now, count=COUNT, rate=0, fleet=fleet))
        seen: dict[str, int] = {}
        spikes = []
        for g in generated:
            seen[g.event.sensor_id] = seen.get(g.event.sensor_id, 0) + 1
            if g.label is not None and g.label.kind == "spike" and seen[g.event.sensor_id] > WARMUP:
                spikes.append(g.event.key)
        stored = await pipeline.store.alerts(limit=100_000)
        ml = [a for a in stored if a.detector is Detector.ML]
        flagged = {(a.source, a.timestamp) for a in ml}
        assert len(spikes) >= 10
        assert sum(key in flagged for key in spikes) >= SPIKE_RECALL * len(spikes)
        assert {a.model_version for a in ml} == {version}
        published = await pipeline.log.end_offsets(settings.topics.system_alerts)
        assert sum(published.values()) == len(stored)
        assert await pipeline.store.unpublished_alerts(10) == []
    finally:
        await pipeline.aclose()
