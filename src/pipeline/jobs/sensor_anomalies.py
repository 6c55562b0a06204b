"""Anomaly detection in the sensors job: features from each sensor's keyed state, scored by
a model a whole batch at a time; a reading the model flags becomes an `Alert` (kind
`anomaly`, detector `ml`) with its score, features and the model's version.

    valid readings ──features (scan, state per sensor)──scoring (map_batch)──→ alerts

Features of a reading (`feature_names`), computed before the reading updates its sensor's
state:

    value       the reading's value
    zscore      deviation from the sensor's rolling mean, in units of its rolling stddev
                (exponentially weighted, weight `ALPHA`; a value beyond `CLIP` stddevs
                changes neither, so a spike or a drift never becomes the norm, unless the
                sensor stays beyond for `RELEARN` readings: then its state starts afresh;
                a repeated value changes neither, so a stuck sensor keeps its stddev)
    trend       the zscore's own exponentially weighted mean (weight `TREND`, each zscore
                clipped at ±`TREND_CLIP`): high while the sensor stays off, as in a drift
    rate        change since the sensor's previous reading, per second
    gap_s       seconds since the sensor's previous reading
    hour_sin, hour_cos   hour of day (UTC), on a circle
    battery     battery level, percent (100 for a mains-powered sensor)
    signal      signal strength, dBm (-150 when not reported)
    repeats     how many readings in a row repeated the previous value exactly
    deviation   |zscore|: how far off, either way
    run         how many readings in a row (this one included) deviated the same way by
                more than `RUN_Z` stddevs; 0 when this one does not
    persistence how far off the sensor has stayed: its zscore's slow exponentially
                weighted mean (weight `LEVEL`, each zscore clipped at ±`TREND_CLIP`), in
                magnitude and capped at |zscore|; 0 unless this reading deviates the same
                way, so it ends with the deviation (a sensor back to normal after a drift
                is not held against it)
    type_<name> one column per sensor type of the catalog, 1 for the reading's type

A sensor's first `WARMUP` readings only build its state: they are not scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.application.scoring import LiveModel
from pipeline.domain import Alert, Reading, SensorCatalog
from pipeline.domain.alerts import AlertKind, Severity, alert_id_for
from pipeline.streams import Stream

FEATURE_STEP = "anomaly-features"
ALPHA = 0.01
CLIP = 5.0
WARMUP = 30
RELEARN = 600
TREND = 0.3
TREND_CLIP = 10.0
LEVEL = 0.05
RUN_Z = 1.0
MIN_STDDEV = 1e-6
_DAY = 86_400.0
_BASE_FEATURES = (
    "value", "zscore", "trend", "rate", "gap_s", "hour_sin", "hour_cos", "battery", "signal",
    "repeats", "deviation", "run", "persistence",
)  # fmt: skip


def feature_names(catalog: SensorCatalog) -> tuple[str, ...]:
    """The names of a feature row's columns, in order."""
    return (*_BASE_FEATURES, *(f"type_{kind.name}" for kind in sorted(catalog, key=_name)))


def _name(kind: object) -> str:
    return str(getattr(kind, "name", ""))


History = tuple[int, float, float, float, float, int, int, float, float, int]
"""A sensor's state: (readings seen, rolling mean, rolling variance, previous value,
previous event time in epoch seconds, repeats, readings in a row beyond `CLIP`, trend, level
(the zscore's slow mean), run (signed: positive for readings above the mean))."""


@dataclass(frozen=True, slots=True)
class Featured:
    """A reading with its feature row; `warm` once its sensor has enough history."""

    reading: Reading
    row: tuple[float, ...]
    warm: bool


class SensorFeatures:
    """The scan step's function: a reading and its sensor's history → features, new history."""

    def __init__(self, catalog: SensorCatalog) -> None:
        kinds = sorted(kind.name for kind in catalog)
        self._one_hot = {
            name: tuple(1.0 if other == name else 0.0 for other in kinds) for name in kinds
        }
        self._unknown = tuple(0.0 for _ in kinds)

    def __call__(self, history: History | None, reading: Reading) -> tuple[History, Featured]:
        value = reading.value
        at = reading.timestamp.timestamp()
        if history is None:
            count, mean, var, last, last_at, repeats, outliers, trend, level, run = (
                0, value, 0.0, value, at, 0, 0, 0.0, 0.0, 0
            )  # fmt: skip
        else:
            count, mean, var, last, last_at, repeats, outliers, trend, level, run = history
        std = math.sqrt(var)
        deviation = value - mean
        zscore = deviation / std if std > MIN_STDDEV else 0.0
        clipped = max(-TREND_CLIP, min(TREND_CLIP, zscore))
        trend += TREND * (clipped - trend)
        level += LEVEL * (clipped - level)
        # A jump of more than `CLIP` stddevs that lands nearer the mean than it jumped is a
        # snap back (a drift ended): a run before it is over, even on the same side.
        jump = abs(value - last)
        going_on = not (jump > CLIP * std and jump > abs(deviation))
        if zscore > RUN_Z:
            run = run + 1 if run > 0 and going_on else 1
        elif zscore < -RUN_Z:
            run = run - 1 if run < 0 and going_on else -1
        else:
            run = 0
        persistence = min(abs(zscore), abs(level)) if level * zscore > 0.0 else 0.0
        gap = at - last_at
        rate = (value - last) / gap if gap > 0 else 0.0
        repeats = repeats + 1 if count and value == last else 0
        angle = 2.0 * math.pi * (at % _DAY) / _DAY
        row = (
            value,
            zscore,
            trend,
            rate,
            gap,
            math.sin(angle),
            math.cos(angle),
            100.0 if reading.battery_level is None else reading.battery_level,
            -150.0 if reading.signal_strength is None else reading.signal_strength,
            float(repeats),
            abs(zscore),
            float(abs(run)),
            persistence,
            *self._one_hot.get(reading.sensor_type, self._unknown),
        )
        if count < WARMUP or not repeats:
            # Early on a plain running mean, then exponential weighting. A value beyond
            # `CLIP` stddevs leaves both alone (a spike or a drift must not become the
            # norm), unless the sensor stays there for `RELEARN` readings: a new level.
            alpha = max(ALPHA, 1.0 / (count + 1))
            if count < WARMUP or abs(deviation) <= CLIP * std:
                mean += alpha * deviation
                var = (1.0 - alpha) * (var + alpha * deviation * deviation)
                outliers = 0
            elif outliers + 1 >= RELEARN:
                count, mean, var, outliers = 0, value, 0.0, 0
            else:
                outliers += 1
        new: History = (
            count + 1, mean, var, value, max(at, last_at), repeats, outliers, trend, level, run
        )  # fmt: skip
        return new, Featured(reading, row, count >= WARMUP)


class AnomalyScoring:
    """The map_batch step's function: scores a batch's warm readings in one call."""

    def __init__(self, live: LiveModel, features: Sequence[str]) -> None:
        self.live = live
        self.features = tuple(features)

    def __call__(self, batch: list[Featured]) -> list[Alert | None]:
        warm = [f for f in batch if f.warm]
        out: list[Alert | None] = [None] * len(batch)
        if not warm:
            return out
        scored, version = self.live.score([f.row for f in warm])
        flagged = {
            id(f): score
            for f, score, bad in zip(warm, scored.scores, scored.anomalous, strict=True)
            if bad
        }
        if flagged:
            for index, f in enumerate(batch):
                score = flagged.get(id(f))
                if score is not None:
                    out[index] = self._alert(f, score, version)
        return out

    def _alert(self, featured: Featured, score: float, version: str) -> Alert:
        reading = featured.reading
        return Alert(
            alert_id=alert_id_for(reading.sensor_id, reading.timestamp, AlertKind.ANOMALY),
            source=reading.sensor_id,
            kind=AlertKind.ANOMALY,
            severity=Severity.WARNING,
            message=(
                f"{reading.sensor_type} {reading.value:g} {reading.unit} on sensor "
                f"{reading.sensor_id} at {reading.location} scored anomalous "
                f"({score:.3f}) by model {version}"
            ),
            timestamp=reading.timestamp,
            sensor_type=reading.sensor_type,
            value=reading.value,
            score=score,
            model_version=version,
            features=dict(zip(self.features, featured.row, strict=True)),
        )


def _present(alert: Alert | None) -> tuple[Alert, ...]:
    return () if alert is None else (alert,)


def anomalies(
    readings: Stream[tuple[str, str], Reading], live: LiveModel, catalog: SensorCatalog
) -> Stream[tuple[str, str], Alert]:
    """The alerts `live`'s model raises on `readings` (keyed by sensor)."""
    return (
        readings.scan(SensorFeatures(catalog), step=FEATURE_STEP)
        .map_batch(AnomalyScoring(live, feature_names(catalog)), name="anomaly scoring")
        .flat_map(_present, name="anomalies")
    )
