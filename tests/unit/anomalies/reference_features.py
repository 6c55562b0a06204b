"""The features of `pipeline.jobs.sensor_anomalies`, computed the straightforward way: one
reading at a time, from its sensor's state (what the job did before it computed them a
batch at a time). The oracle the column-wise computation is checked against."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.domain import Reading, SensorCatalog
from pipeline.jobs.sensor_anomalies import (
    ALPHA,
    CLIP,
    EXCURSION,
    LEVEL,
    MIN_STDDEV,
    RELEARN,
    RUN_Z,
    TREND,
    TREND_CLIP,
    WARMUP,
    History,
    PreviousHistory,
    upgraded,
)

_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Featured:
    """A reading with its feature row; `warm` once its sensor has enough history."""

    reading: Reading
    row: tuple[float, ...]
    warm: bool


class SensorFeatures:
    """A reading and its sensor's history → its features, and the new history."""

    def __init__(self, catalog: SensorCatalog) -> None:
        kinds = sorted(kind.name for kind in catalog)
        self._one_hot = {
            name: tuple(1.0 if other == name else 0.0 for other in kinds) for name in kinds
        }
        self._unknown = tuple(0.0 for _ in kinds)

    def __call__(
        self, history: History | PreviousHistory | None, reading: Reading
    ) -> tuple[History, Featured]:
        value = reading.value
        at = reading.timestamp.timestamp()
        if history is None:
            count, mean, var, last, last_at, repeats, outliers, trend, level, run, mean0, var0 = (
                0, value, 0.0, value, at, 0, 0, 0.0, 0.0, 0, value, 0.0
            )  # fmt: skip
        else:
            count, mean, var, last, last_at, repeats, outliers, trend, level, run, mean0, var0 = (
                upgraded(history)
            )
        before = run
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
        # A run of more than `EXCURSION` readings that ends with this reading nearer the
        # mean from before the run than the present one was an excursion the state
        # followed (a slow drift within `CLIP`): the state goes back to before it.
        back = (
            count >= WARMUP
            and abs(before) > EXCURSION
            and abs(run) <= abs(before)
            and abs(value - mean0) < abs(deviation)
        )
        if back:
            mean, var, outliers = mean0, var0, 0
        elif count < WARMUP or not repeats:
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
        if abs(run) <= 1:  # no run, or its first reading: before the run is now
            mean0, var0 = mean, var
        new: History = (
            count + 1, mean, var, value, max(at, last_at), repeats, outliers, trend, level, run,
            mean0, var0,
        )  # fmt: skip
        return new, Featured(reading, row, count >= WARMUP)
