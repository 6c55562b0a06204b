"""`pipeline evaluate sensors`: the sensors job, in memory, over a generated fleet with
labelled anomalies (spike, stuck, drift), scored against the labels for each detector: the
Isolation Forest, the per-sensor z-score baseline and the threshold rules.

Protocol: the first `train_share` of the stream runs through the job with the z-score
default, whose scoring step samples the readings it did not flag, exactly as retraining does
in a worker; the forest and the z-score threshold are fitted on that sample. Then the whole
stream runs through the job once per model (the first part only builds each sensor's state),
and only the rest of the stream is counted.

Per anomaly kind k, counted per reading over the normal readings and those labelled k:
recall = flagged readings of k / readings of k; precision = flagged readings of k / (those +
flagged normal readings), the precision the detector would have if only k were injected.
An anomaly is detected (`events`) when at least one of its readings is flagged.

Stuck echoes: a normal reading that repeats, right after it, the exact value of its sensor's
stuck run (the generator's normal value rounded to the sensor's resolution lands on the
stuck value) cannot be told from the run by any detector. It is counted as a normal reading
(`precision`, `f1`) and, beside, not at all (`precision_clean`, `f1_clean`): it exists only
because a stuck run was injected, so the precision on spikes or drift "if only they were
injected" does not hold it against a detector."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.adapters.model import ZScoreModel, trainer_for
from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import Generated
from pipeline.application.generators.sensors import (
    SensorAnomalyKind,
    SensorFleetConfig,
    generate_readings,
)
from pipeline.application.ports.model import ScoringModel
from pipeline.application.scoring import LiveModel, training_rows
from pipeline.domain import DEFAULT_CATALOG, Alert, Reading
from pipeline.domain.alerts import Detector
from pipeline.jobs.sensor_anomalies import feature_names
from pipeline.jobs.sensors import ALERTS, SensorJobConfig, sensor_job
from pipeline.streams import Task, to_millis

TOPIC = "sensor-readings"
START = datetime(2026, 11, 30, tzinfo=UTC)
BATCH = 1_000
Key = tuple[str, datetime]


@dataclass(frozen=True, slots=True)
class KindScore:
    """One detector's figures on one anomaly kind."""

    detector: str
    kind: str
    precision: float
    recall: float
    f1: float
    events_detected: int
    events: int
    precision_clean: float
    f1_clean: float


def run_job(
    readings: Sequence[Reading], model: ScoringModel | None
) -> tuple[list[Alert], LiveModel | None]:
    """The alerts the sensors job raises on `readings` (one partition, batches of `BATCH`),
    scoring with `model` (none: threshold rules only)."""
    live = None if model is None else LiveModel(model, sample_size=len(readings))
    task = Task(sensor_job(SensorJobConfig(topic=TOPIC, scoring=live)).plan())
    task.assign(0, {}, to_millis(START))
    alerts: list[Alert] = []
    for start in range(0, len(readings), BATCH):
        chunk = readings[start : start + BATCH]
        now = to_millis(chunk[-1].timestamp) + 1_000
        out = task.process([(TOPIC, 0, r, None) for r in chunk], now)
        alerts.extend(out.values(ALERTS.name))
        task.changes()  # what a checkpoint takes
    return alerts, live


def training_sample(readings: Sequence[Reading], contamination: float) -> list[Sequence[float]]:
    """The feature rows of `readings` a worker's first retraining learns from: those the
    untrained z-score does not flag, and flagged ones up to `contamination`."""
    names = feature_names(DEFAULT_CATALOG)
    _, live = run_job(readings, ZScoreModel("zscore-default", names.index("zscore")))
    assert live is not None
    return training_rows(*live.sample(), contamination)


def generated_readings(*, events: int, seed: int, sensors: int) -> list[Reading]:
    """`events` readings of a generated fleet (anomalies at the default rate)."""
    fleet = SensorFleetConfig(sensors=sensors)
    stream = generate_readings(seed=seed, start=START, config=fleet)
    return [g.event for g in itertools.islice(stream, events)]


def stuck_echoes(labelled: Sequence[Generated[Reading]]) -> set[Key]:
    """The normal readings that repeat, right after it, the value of their sensor's stuck
    run (`labelled` in each sensor's order)."""
    stuck_value: dict[str, float | None] = {}
    echoes: set[Key] = set()
    for g in labelled:
        sensor, value = g.event.sensor_id, g.event.value
        if g.label is not None:
            stuck_value[sensor] = value if g.label.kind == SensorAnomalyKind.STUCK else None
        elif stuck_value.get(sensor) == value:
            echoes.add(g.event.key)
        else:
            stuck_value[sensor] = None
    return echoes


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score_detector(
    detector: str,
    flagged: set[Key],
    labelled: Sequence[Generated[Reading]],
) -> list[KindScore]:
    """Per anomaly kind, `detector`'s precision, recall, F1 and anomalies detected, with
    and without the stuck echoes as false alarms."""
    false = {g.event.key for g in labelled if g.label is None and g.event.key in flagged}
    false_clean = len(false - stuck_echoes(labelled))
    out: list[KindScore] = []
    for kind in SensorAnomalyKind:
        of_kind = [g for g in labelled if g.label is not None and g.label.kind == kind]
        hits = sum(1 for g in of_kind if g.event.key in flagged)
        events = {g.label.anomaly_id for g in of_kind if g.label is not None}
        found = {g.label.anomaly_id for g in of_kind if g.label and g.event.key in flagged}
        precision = hits / (hits + len(false)) if hits + len(false) else 0.0
        clean = hits / (hits + false_clean) if hits + false_clean else 0.0
        recall = hits / len(of_kind) if of_kind else 0.0
        score = KindScore(
            detector, kind.value, precision, recall, _f1(precision, recall),
            len(found), len(events), clean, _f1(clean, recall),
        )  # fmt: skip
        out.append(score)
    return out


def evaluate(
    *, events: int, seed: int, sensors: int = 100, anomaly_rate: float = 0.002,
    contamination: float = 0.05, train_share: float = 0.3,
) -> list[KindScore]:  # fmt: skip
    """Run the protocol of this module and return every detector's figures."""
    if not 0.0 < contamination <= 0.5:
        raise ConfigurationError(f"contamination {contamination} must be in (0, 0.5]")
    fleet = SensorFleetConfig(sensors=sensors, anomaly_rate=anomaly_rate)
    generated = list(
        itertools.islice(generate_readings(seed=seed, start=START, config=fleet), events)
    )
    readings = [g.event for g in generated]
    split = int(len(readings) * train_share)
    sample = training_sample(readings[:split], contamination)
    names = feature_names(DEFAULT_CATALOG)
    models = {
        kind: trainer_for(kind, features=names, contamination=contamination).fit(
            sample, version=f"{kind}-evaluation"
        )
        for kind in ("forest", "zscore")
    }
    test = generated[split:]
    rows: list[KindScore] = []
    thresholds: set[Key] = set()
    for kind, model in models.items():
        alerts, _ = run_job(readings, model)
        ml = {(a.source, a.timestamp) for a in alerts if a.detector is Detector.ML}
        thresholds = {(a.source, a.timestamp) for a in alerts if a.detector is Detector.THRESHOLD}
        rows.extend(score_detector(f"ml: {kind}", ml, test))
    rows.extend(score_detector("threshold rules", thresholds, test))
    return rows


def table(rows: Iterable[KindScore]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| detector | anomaly | precision | recall | F1 | anomalies detected "
        "| precision, F1 without stuck echoes |",
        "|---|---|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {r.detector} | {r.kind} | {r.precision:.3f} | {r.recall:.3f} | {r.f1:.3f} "
        f"| {r.events_detected}/{r.events} | {r.precision_clean:.3f}, {r.f1_clean:.3f} |"
        for r in rows
    )
    return "\n".join(lines)


async def run_evaluate(args: argparse.Namespace) -> int:
    """`pipeline evaluate sensors`."""
    rows = evaluate(
        events=args.events, seed=args.seed, sensors=args.sensors,
        anomaly_rate=args.anomaly_rate, contamination=args.contamination,
    )  # fmt: skip
    print(table(rows))
    return 0
