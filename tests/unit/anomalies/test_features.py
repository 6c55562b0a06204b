"""Features of a reading, computed from its sensor's keyed state (column-wise, a batch at a
time: one sensor's readings in one batch are as many rounds)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from pipeline.domain import DEFAULT_CATALOG, Reading
from pipeline.jobs.sensor_anomalies import WARMUP, History
from pipeline.jobs.sensor_scoring import SensorFeatures
from tests.unit.anomalies.builders import FEATURES, a_reading

NOISE = (0.1, -0.1, 0.2, -0.2, 0.0)


@dataclass(frozen=True)
class Featured:
    row: list[float]
    warm: bool


def features(history: History | None, *readings: Reading) -> tuple[History, list[Featured]]:
    """One sensor's readings as one batch, from `history`."""
    out = SensorFeatures(DEFAULT_CATALOG)(readings, [0] * len(readings), [history])
    rows = [
        Featured(row, warm) for row, warm in zip(out.rows.tolist(), out.warm.tolist(), strict=True)
    ]
    return out.states[0], rows


def feed(values: list[float], start: int = 0) -> tuple[History, list[Featured]]:
    return features(None, *(a_reading(v, second=start + i) for i, v in enumerate(values)))


def column(featured: Featured, name: str) -> float:
    return featured.row[FEATURES.index(name)]


def test_zscore_is_the_deviation_from_the_rolling_mean_in_rolling_stddevs() -> None:
    normal = [20.0 + NOISE[i % 5] for i in range(200)]
    _, out = feed([*normal, 23.0])

    assert column(out[-1], "zscore") == pytest.approx(3.0 / 0.1414, rel=0.15)
    assert abs(column(out[-2], "zscore")) < 2.0


def test_a_spike_moves_neither_the_mean_nor_the_stddev() -> None:
    normal = [20.0 + NOISE[i % 5] for i in range(200)]
    _, with_spike = feed([*normal, 90.0, 20.0])
    _, without = feed([*normal, 20.0])

    assert column(with_spike[-1], "zscore") == pytest.approx(column(without[-1], "zscore"))


def test_rate_gap_and_repeats_come_from_the_previous_reading() -> None:
    history, _ = features(None, a_reading(20.0, second=0))
    history, [second, third] = features(
        history, a_reading(24.0, second=2), a_reading(24.0, second=3)
    )
    _, [fourth] = features(history, a_reading(24.0, second=4))

    assert column(second, "rate") == pytest.approx(2.0)
    assert column(second, "gap_s") == pytest.approx(2.0)
    assert [column(f, "repeats") for f in (second, third, fourth)] == [0.0, 1.0, 2.0]


def test_hour_of_day_is_cyclic_battery_signal_and_type_are_columns() -> None:
    _, out = feed([20.0])  # 06:00 UTC: a quarter of the day
    row = out[0]

    assert column(row, "hour_sin") == pytest.approx(1.0)
    assert column(row, "hour_cos") == pytest.approx(0.0, abs=1e-9)
    assert (column(row, "battery"), column(row, "signal")) == (80.0, -60.0)
    assert (column(row, "type_temperature"), column(row, "type_humidity")) == (1.0, 0.0)


def test_a_mains_powered_sensor_without_signal_gets_the_documented_defaults() -> None:
    _, [featured] = features(None, a_reading(20.0, battery_level=None, signal_strength=None))

    assert (column(featured, "battery"), column(featured, "signal")) == (100.0, -150.0)


def test_a_sensor_is_scored_only_after_its_warm_up() -> None:
    _, out = feed([20.0 + NOISE[i % 5] for i in range(WARMUP + 1)])

    assert [f.warm for f in out].index(True) == WARMUP


def test_trend_stays_high_while_a_drift_goes_on() -> None:
    normal = [20.0 + NOISE[i % 5] for i in range(200)]
    drift = [20.0 + 0.2 * i for i in range(1, 30)]
    _, out = feed([*normal, *drift])

    assert column(out[-1], "trend") > 5.0
    assert math.isfinite(column(out[-1], "zscore"))


def test_deviation_is_the_zscore_either_way() -> None:
    normal = [20.0 + NOISE[i % 5] for i in range(200)]
    _, out = feed([*normal, 17.0])

    assert column(out[-1], "zscore") < -10.0
    assert column(out[-1], "deviation") == pytest.approx(-column(out[-1], "zscore"))


def test_run_counts_the_readings_in_a_row_that_deviate_the_same_way() -> None:
    normal = [20.0 + NOISE[i % 5] for i in range(200)]
    _, out = feed([*normal, 20.5, 20.5001, 20.5002, 19.5, 19.4999, 20.0])

    assert [column(f, "run") for f in out[-6:]] == [1.0, 2.0, 3.0, 1.0, 2.0, 0.0]


def test_run_and_persistence_grow_in_a_slow_drift_and_end_with_it() -> None:
    normal = [20.0 + NOISE[i % 5] for i in range(200)]
    # A slow ramp the rolling statistics follow: never 4 stddevs off, but off for long.
    ramp = [20.0 + 0.008 * i + NOISE[i % 5] / 2 for i in range(1, 101)]
    _, out = feed([*normal, *ramp, 20.0])

    late = out[len(normal) + len(ramp) - 1]
    assert max(column(f, "deviation") for f in out[len(normal) :]) < 4.0
    assert column(late, "run") > 50
    assert column(late, "persistence") > 1.2
    assert column(out[len(normal) + 20], "persistence") < 0.5
    assert (column(out[-1], "run"), column(out[-1], "persistence")) == (0.0, 0.0)


def test_a_snap_back_ends_the_run_even_on_the_same_side() -> None:
    normal = [20.0 + NOISE[i % 5] for i in range(200)]
    # A drift far beyond the stddevs the state keeps, then back to just above the mean.
    ramp = [20.0 + 0.5 * i for i in range(1, 41)]
    _, out = feed([*normal, *ramp, 20.3, 20.31])

    assert column(out[-3], "run") == 40.0
    assert column(out[-2], "deviation") > 1.0
    assert [column(f, "run") for f in out[-2:]] == [1.0, 2.0]


def test_noise_keeps_run_and_persistence_small() -> None:
    rng = random.Random(4)
    _, out = feed([20.0 + rng.gauss(0.0, 0.1) for _ in range(3_000)])

    warm = out[WARMUP * 10 :]
    assert max(column(f, "run") for f in warm) < 12
    assert max(column(f, "persistence") for f in warm) < 1.0


def excursion(back: float) -> list[float]:
    """Readings of a sensor at 20 ± noise, a slow drift upwards that its state follows
    (never `CLIP` stddevs off: the stddev grows with it), and then `back`."""
    normal = [20.0 + NOISE[i % 5] for i in range(300)]
    ramp = [20.0 + 0.05 * i + NOISE[i % 5] for i in range(1, 121)]
    return [*normal, *ramp, back]


def test_a_drift_the_state_followed_is_forgotten_once_the_sensor_is_back() -> None:
    # The state before the drift: the normal readings alone.
    before, _ = feed(excursion(20.0)[:300])
    after, out = feed(excursion(20.0))

    assert max(column(f, "run") for f in out) > 100  # the drift was one long run
    assert after[1:3] == pytest.approx(before[1:3], rel=0.05)  # mean and variance


def test_after_a_drift_normal_readings_are_not_off_and_a_spike_is_as_far_off_as_before() -> None:
    values = excursion(20.0)
    spike = 30.0
    _, out = feed([*values, *(20.0 + NOISE[i % 5] for i in range(30)), spike])
    _, without_drift = feed([*values[:300], *(20.0 + NOISE[i % 5] for i in range(31)), spike])

    assert max(column(f, "run") for f in out[-31:-1]) < 5
    assert column(out[-1], "zscore") == pytest.approx(column(without_drift[-1], "zscore"), rel=0.1)


def test_a_drift_that_settles_at_a_new_level_is_not_forgotten() -> None:
    # The drift stays where it went: far from the level from before it.
    top = 20.0 + 0.05 * 120
    history, out = feed([*excursion(top), *(top + NOISE[i % 5] for i in range(100))])

    assert history[1] > 24.0  # the mean follows the new level
    assert column(out[-1], "run") == 0.0
