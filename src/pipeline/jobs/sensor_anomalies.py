"""Anomaly detection in the sensors job: features from each sensor's keyed state, scored by
a model a whole batch at a time; a reading the model flags becomes an `Alert` (kind
`anomaly`, detector `ml`) with its score, features and the model's version.

    valid readings ──features and scoring (scan_batch, state per sensor)──→ alerts

A batch's features are computed column by column (`pipeline.jobs.sensor_scoring`), the
warm rows scored in one call, and only a flagged reading becomes a `Reading` and an
`Alert`.

Features of a reading (`feature_names`), computed before the reading updates its sensor's
state:

    value       the reading's value
    zscore      deviation from the sensor's rolling mean, in units of its rolling stddev
                (exponentially weighted, weight `ALPHA`; a value beyond `CLIP` stddevs
                changes neither, so a spike or a drift never becomes the norm, unless the
                sensor stays beyond for `RELEARN` readings: then its state starts afresh;
                a repeated value changes neither, so a stuck sensor keeps its stddev; a
                run of more than `EXCURSION` readings that ends with a reading nearer the
                mean from before the run than the present mean was an excursion (a slow
                drift the mean and stddev followed within `CLIP`): both go back to what
                they were before it)
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

from pipeline.application.scoring import LiveModel
from pipeline.domain import Alert, SensorCatalog
from pipeline.domain.sensor_columns import ReadingRow
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
EXCURSION = 20
MIN_STDDEV = 1e-6
BASE_FEATURES = (
    "value", "zscore", "trend", "rate", "gap_s", "hour_sin", "hour_cos", "battery", "signal",
    "repeats", "deviation", "run", "persistence",
)  # fmt: skip


def feature_names(catalog: SensorCatalog) -> tuple[str, ...]:
    """The names of a feature row's columns, in order."""
    return (*BASE_FEATURES, *(f"type_{kind.name}" for kind in sorted(catalog, key=_name)))


def _name(kind: object) -> str:
    return str(getattr(kind, "name", ""))


History = tuple[int, float, float, float, float, int, int, float, float, int, float, float]
"""A sensor's state (step `FEATURE_STEP`): (readings seen, rolling mean, rolling variance,
previous value, previous event time in epoch seconds, repeats, readings in a row beyond
`CLIP`, trend, level (the zscore's slow mean), run (signed: positive for readings above
the mean), and the rolling mean and variance from before the present run (as its first
reading, or the last reading outside a run, left them))."""

PreviousHistory = tuple[int, float, float, float, float, int, int, float, float, int]
"""The state as a checkpoint written before the mean and variance from before the present
run were kept holds it: `History` without its last two fields."""


def upgraded(state: History | PreviousHistory) -> History:
    """`state` as this version keeps it: a previous version's (from a checkpoint written
    before the excursion rule) takes its present mean and variance as those from before
    its run, as if the run began now."""
    match state:
        case (_, mean, var, _, _, _, _, _, _, _):
            return (*state, mean, var)
        case _:
            return state


def anomalies(
    readings: Stream[tuple[str, str], ReadingRow], live: LiveModel, catalog: SensorCatalog
) -> Stream[tuple[str, str], Alert]:
    """The alerts `live`'s model raises on `readings` (keyed by sensor): one step that
    computes a batch's features column-wise from its sensors' states and scores the warm
    ones in one call (`pipeline.jobs.sensor_scoring`)."""
    # Imported here: numpy is loaded by a worker that scores, not by every importer of
    # `feature_names` (the worker's entry point among them).
    from pipeline.jobs.sensor_scoring import AnomalyScoring  # noqa: PLC0415

    return readings.scan_batch(AnomalyScoring(live, catalog), step=FEATURE_STEP)
