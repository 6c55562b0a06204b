"""Anomaly scoring in the sensors job, a batch at a time: the features of a batch of
readings computed column by column (numpy) from their sensors' states, the warm rows
scored in one call, and an `Alert` built only for a reading the model flags.

The features are those `pipeline.jobs.sensor_anomalies` documents, with the same
arithmetic, operation for operation, as one reading at a time: each reading's features
come from its sensor's state as the sensor's previous reading left it. A sensor's
readings within a batch are a chain, so the batch is computed in rounds: round k takes
the k-th reading of every sensor that has one and advances all those sensors' states at
once (a batch of 5,000 readings of 1,000 sensors is five rounds). The states are the
step's keyed state (`History`, as one reading at a time kept it), so a checkpoint, a
restore and a replay are the same as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray

from pipeline.application.scoring import LiveModel
from pipeline.domain import Alert, SensorCatalog
from pipeline.domain.alerts import AlertKind, Severity, alert_id_for
from pipeline.domain.sensor_columns import ReadingLike, ReadingRow, reading_of, row_of
from pipeline.jobs.sensor_anomalies import (
    ALPHA,
    BASE_FEATURES,
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
    feature_names,
    upgraded,
)
from pipeline.streams import KeyedBatch

Floats = NDArray[np.float64]
_DAY = 86_400.0
_TWO_PI = 2.0 * np.pi


@dataclass(frozen=True, slots=True)
class BatchFeatures:
    """A batch's feature rows (one per reading, columns as `feature_names`), which of them
    are warm (their sensor had `WARMUP` readings before), and each slot's new state."""

    rows: Floats
    warm: NDArray[np.bool_]
    states: list[History]


class SensorFeatures:
    """The features of a batch of readings from their sensors' states, column-wise."""

    def __init__(self, catalog: SensorCatalog) -> None:
        types = feature_names(catalog)[len(BASE_FEATURES) :]
        base = len(BASE_FEATURES)
        self._column = {name.removeprefix("type_"): base + i for i, name in enumerate(types)}
        self._width = len(BASE_FEATURES) + len(types)

    def __call__(
        self,
        readings: Sequence[ReadingLike],
        slots: Sequence[int],
        states: Sequence[History | PreviousHistory | None],
    ) -> BatchFeatures:
        """The features of `readings`; `slots[i]` is the index in `states` of reading i's
        sensor state (None: the sensor's first reading is in this batch; a previous
        version's state, from an older checkpoint, is upgraded)."""
        n = len(readings)
        rows = np.zeros((n, self._width))
        if not n:
            return BatchFeatures(rows, np.zeros(0, dtype=np.bool_), [])
        if not all(type(r) is ReadingRow for r in readings):
            readings = [r if type(r) is ReadingRow else row_of(reading_of(r)) for r in readings]
        _, kinds, values, _, stamps, _, batteries, signals = zip(*readings, strict=True)
        seconds = [moment.timestamp() for moment in stamps]
        value, at = np.array(values, dtype=np.float64), np.array(seconds, dtype=np.float64)
        # Each slot's readings in batch order, the k-th at order[starts[slot] + k]; slots
        # sorted busiest first, so that the sensors of round k are a prefix.
        slot = np.array(slots, dtype=np.intp)
        counts = np.bincount(slot, minlength=len(states))
        order = np.argsort(slot, kind="stable")
        starts = np.cumsum(counts) - counts
        busiest = np.argsort(-counts, kind="stable")
        first = order[starts].tolist()
        state = np.array(
            [
                (0, values[f], 0.0, values[f], seconds[f], 0, 0, 0.0, 0.0, 0, values[f], 0.0)
                if s is None
                else upgraded(s)
                for s, f in zip(states, first, strict=True)
            ],
            dtype=np.float64,
        )[busiest].T.copy()
        counts, starts = counts[busiest], starts[busiest]
        fewer = -counts  # ascending, for searchsorted
        warm = np.empty(n, dtype=np.bool_)
        for k in range(int(counts[0])):
            m = int(np.searchsorted(fewer, -k, side="left"))  # the sensors with a k-th
            at_k = order[starts[:m] + k]
            warm[at_k] = _advance(state[:, :m], value[at_k], at[at_k], rows, at_k)
        rows[:, 0] = value
        angle = _TWO_PI * (at % _DAY) / _DAY
        rows[:, 5], rows[:, 6] = np.sin(angle), np.cos(angle)
        rows[:, 7] = [100.0 if b is None else b for b in batteries]
        rows[:, 8] = [-150.0 if s is None else s for s in signals]
        rows[:, 10], rows[:, 11] = np.abs(rows[:, 1]), np.abs(rows[:, 11])
        column = self._column
        kind_columns = np.array([column.get(kind, -1) for kind in kinds], dtype=np.intp)
        known = np.flatnonzero(kind_columns >= 0)
        rows[known, kind_columns[known]] = 1.0
        return BatchFeatures(rows, warm, _histories(state, busiest))


def _advance(
    state: Floats, v: Floats, t: Floats, rows: Floats, at: NDArray[np.intp]
) -> NDArray[np.bool_]:
    """One round: the readings `v` at times `t` (rows `at` of `rows`), one per sensor of
    `state` (a column per sensor, a row per `History` field), advance their sensors'
    states; writes the features that depend on the state; returns which are warm."""
    count, mean, var, last, last_at, repeats, outliers, trend, level, run, mean0, var0 = state
    std = np.sqrt(var)
    before = run.copy()
    deviation = v - mean
    zscore = np.zeros(len(v))
    np.divide(deviation, std, out=zscore, where=std > MIN_STDDEV)
    clipped = np.clip(zscore, -TREND_CLIP, TREND_CLIP)
    trend += TREND * (clipped - trend)
    level += LEVEL * (clipped - level)
    # A jump beyond `CLIP` stddevs that lands nearer the mean than it jumped is a snap
    # back (a drift ended): a run before it is over, even on the same side.
    jump = np.abs(v - last)
    going_on = ~((jump > CLIP * std) & (jump > np.abs(deviation)))
    run[:] = np.where(
        zscore > RUN_Z,
        np.where((run > 0) & going_on, run + 1.0, 1.0),
        np.where(zscore < -RUN_Z, np.where((run < 0) & going_on, run - 1.0, -1.0), 0.0),
    )
    gap = t - last_at
    rate = np.zeros(len(v))
    np.divide(v - last, gap, out=rate, where=gap > 0)
    repeats[:] = np.where((count > 0) & (v == last), repeats + 1.0, 0.0)
    persistence = np.where(level * zscore > 0.0, np.minimum(np.abs(zscore), np.abs(level)), 0.0)
    rows[at, 1], rows[at, 2], rows[at, 3], rows[at, 4] = zscore, trend, rate, gap
    rows[at, 9], rows[at, 11], rows[at, 12] = repeats, run, persistence
    warm: NDArray[np.bool_] = count >= WARMUP
    # A long run that ends with the reading nearer the mean from before the run than the
    # present one was an excursion the state followed: the state goes back to before it.
    ended = warm & (np.abs(before) > EXCURSION) & (np.abs(run) <= np.abs(before))
    back = ended & (np.abs(v - mean0) < np.abs(deviation))
    # Early on a plain running mean, then exponential weighting; a value beyond `CLIP`
    # stddevs leaves both alone unless the sensor stays there for `RELEARN` readings (a
    # new level: its state starts afresh). A repeat after the warm-up changes neither.
    early = ~warm
    updating = (early | (repeats == 0.0)) & ~back
    alpha = np.maximum(ALPHA, 1.0 / (count + 1.0))
    normal = updating & (early | (np.abs(deviation) <= CLIP * std))
    beyond = updating & ~normal
    relearn = beyond & (outliers + 1.0 >= RELEARN)
    moved = (1.0 - alpha) * (var + alpha * deviation * deviation)
    var[:] = np.where(relearn, 0.0, np.where(normal, moved, var))
    mean[:] = np.where(relearn, v, np.where(normal, mean + alpha * deviation, mean))
    outliers[:] = np.where(normal | relearn | back, 0.0, np.where(beyond, outliers + 1.0, outliers))
    mean[:], var[:] = np.where(back, mean0, mean), np.where(back, var0, var)
    starting = np.abs(run) <= 1.0  # no run, or its first reading: before it is now
    mean0[:], var0[:] = np.where(starting, mean, mean0), np.where(starting, var, var0)
    count[:] = np.where(relearn, 0.0, count) + 1.0
    last_at[:] = np.maximum(t, last_at)
    last[:] = v
    scored: NDArray[np.bool_] = warm & ~relearn  # a sensor starting afresh is not warm
    return scored


def _histories(state: Floats, busiest: NDArray[np.intp]) -> list[History]:
    """Each slot's `History` (in slot order) from `state`'s columns (busiest first)."""
    unsorted = np.empty_like(busiest)
    unsorted[busiest] = np.arange(len(busiest))
    count, mean, var, last, last_at, repeats, outliers, trend, level, run, mean0, var0 = state[
        :, unsorted
    ]
    whole = [a.astype(np.int64).tolist() for a in (count, repeats, outliers, run)]
    floats = [a.tolist() for a in (mean, var, last, last_at, trend, level, mean0, var0)]
    return list(
        zip(
            whole[0],
            *floats[:4],
            whole[1],
            whole[2],
            *floats[4:6],
            whole[3],
            *floats[6:],
            strict=True,
        )
    )


class AnomalyScoring:
    """The `scan_batch` step's function: a batch's features from its sensors' states, its
    warm rows scored in one call, an `Alert` for each reading the model flags."""

    def __init__(self, live: LiveModel, catalog: SensorCatalog) -> None:
        self.live = live
        self.features = feature_names(catalog)
        self._compute = SensorFeatures(catalog)

    def __call__(
        self, batch: KeyedBatch[tuple[str, str], History, ReadingRow]
    ) -> tuple[list[History], list[tuple[int, Alert]]]:
        computed = self._compute(batch.values, batch.slots, batch.states)
        warm = np.flatnonzero(computed.warm)
        alerts: list[tuple[int, Alert]] = []
        if warm.size:
            rows = computed.rows[warm]
            # A 2-D array is a sequence of rows: the model takes it as it is.
            scored, version = self.live.score(cast("Sequence[Sequence[float]]", rows))
            flagged = np.flatnonzero(np.asarray(scored.anomalous, dtype=np.bool_))
            for j in flagged.tolist():
                index = int(warm[j])
                alert = self._alert(
                    batch.values[index], scored.scores[j], version, rows[j].tolist()
                )
                alerts.append((index, alert))
        return computed.states, alerts

    def _alert(self, row: ReadingLike, score: float, version: str, features: list[float]) -> Alert:
        reading = reading_of(row)
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
            score=float(score),
            model_version=version,
            features=dict(zip(self.features, features, strict=True)),
        )
