"""The features computed a batch at a time, column-wise, are those of the straightforward
computation one reading at a time (`reference_features`, the job's former step): the same
rows, warm-up and sensor states, however the readings are cut into batches and whether
or not the states were written and read back between batches (a checkpoint, a restore)."""

from __future__ import annotations

import itertools
import pickle
import random
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.application.generators.sensors import SensorFleetConfig, generate_readings
from pipeline.domain import DEFAULT_CATALOG
from pipeline.domain.sensor_columns import ReadingLike, ReadingRow, row_of
from pipeline.jobs.sensor_anomalies import CLIP, EXCURSION, RELEARN, History, PreviousHistory
from pipeline.jobs.sensor_scoring import SensorFeatures
from tests.unit.anomalies.builders import T0
from tests.unit.anomalies.reference_features import SensorFeatures as OneAtATime

SENSORS = (
    ("temp-1", "temperature"),
    ("hum-1", "humidity"),
    ("temp-2", "temperature"),
    ("odd-1", "not-in-the-catalog"),
)


def reference(readings: Sequence[ReadingLike]) -> tuple[np.ndarray, list[bool], dict[str, History]]:
    """Rows, warm flags and final states, one reading at a time."""
    features = OneAtATime(DEFAULT_CATALOG)
    states: dict[str, History] = {}
    rows, warm = [], []
    for reading in readings:
        states[reading.sensor_id], featured = features(
            states.get(reading.sensor_id),
            reading,  # type: ignore[arg-type]  # a row reads as a Reading does
        )
        rows.append(featured.row)
        warm.append(featured.warm)
    return np.array(rows), warm, states


def in_batches(
    readings: Sequence[ReadingLike], cuts: Sequence[int]
) -> tuple[np.ndarray, list[bool], dict[str, History]]:
    """Rows, warm flags and final states, column-wise, in batches ending at `cuts`; the
    states pickled and read back between batches, as a checkpoint and a restore do."""
    features = SensorFeatures(DEFAULT_CATALOG)
    states: dict[str, History] = {}
    rows, warm = [], []
    bounds = [0, *sorted(set(cuts)), len(readings)]
    for start, end in itertools.pairwise(bounds):
        batch = readings[start:end]
        if not batch:
            continue
        slots: dict[str, int] = {}
        for reading in batch:
            slots.setdefault(reading.sensor_id, len(slots))
        out = features(batch, [slots[r.sensor_id] for r in batch], [states.get(s) for s in slots])
        states.update(zip(slots, pickle.loads(pickle.dumps(out.states)), strict=True))
        rows.append(out.rows)
        warm.extend(out.warm.tolist())
    return np.vstack(rows), warm, states


def assert_same(readings: Sequence[ReadingLike], cuts: Sequence[int]) -> None:
    expected_rows, expected_warm, expected_states = reference(readings)
    rows, warm, states = in_batches(readings, cuts)
    assert rows.shape == expected_rows.shape
    # Same operations in the same order on IEEE doubles: equal to the last bit.
    assert np.array_equal(rows, expected_rows)
    assert warm == expected_warm
    assert states == expected_states
    assert all(type(field) is type(ref) for s in states for field, ref in
               zip(states[s], expected_states[s], strict=True))  # fmt: skip


values = st.one_of(
    st.floats(-0.5, 0.5),  # noise around the sensor's level
    st.floats(-1e4, 1e4),  # anywhere: spikes, snap-backs
    st.just(None),  # the previous value again (stuck)
)
steps = st.one_of(st.integers(1, 120), st.just(0), st.integers(-30, -1))  # late, same time
events = st.lists(
    st.tuples(
        st.integers(0, len(SENSORS) - 1),
        values,
        steps,
        st.one_of(st.none(), st.floats(0, 100)),
        st.one_of(st.none(), st.floats(-150, 0)),
    ),
    min_size=1,
    max_size=400,
)


def rows_of(
    drawn: Sequence[tuple[int, float | None, int, float | None, float | None]],
) -> list[ReadingRow]:
    last: dict[int, float] = {}
    at = T0
    out = []
    for sensor, value, step, battery, signal in drawn:
        level = 20.0 + 10 * sensor
        v = last.get(sensor, level) if value is None else level + value
        last[sensor] = v
        at += timedelta(seconds=step)
        sensor_id, kind = SENSORS[sensor]
        out.append(ReadingRow(sensor_id, kind, v, "u", at, "site-01", battery, signal))
    return out


@settings(max_examples=150, deadline=None)
@given(events, st.lists(st.integers(0, 400), max_size=8))
def test_any_stream_cut_anyhow_has_the_features_of_one_reading_at_a_time(
    drawn: list[tuple[int, float | None, int, float | None, float | None]], cuts: list[int]
) -> None:
    assert_same(rows_of(drawn), cuts)


def test_the_generated_fleet_with_its_anomalies_has_the_features_of_one_reading_at_a_time() -> None:
    config = SensorFleetConfig(sensors=40, anomaly_rate=0.02, gap_rate=0.001)
    generated = itertools.islice(generate_readings(seed=5, start=T0, config=config), 12_000)
    readings = [g.event for g in generated]
    rng = random.Random(2)
    cuts = list(itertools.accumulate(rng.randint(1, 2_500) for _ in range(12)))

    assert_same(readings, cuts)  # Readings, as the test driver sends them
    assert_same([row_of(r) for r in readings], cuts)  # rows, as the worker decodes them


def test_a_sensor_that_stays_beyond_its_limits_relearns_as_one_reading_at_a_time() -> None:
    normal = [20.0 + 0.1 * ((i % 5) - 2) for i in range(100)]
    beyond = [20.0 + 100 * CLIP + 0.1 * (i % 3) for i in range(RELEARN + 50)]
    readings = [
        ReadingRow(
            "temp-1", "temperature", v, "celsius", T0 + timedelta(seconds=i), "s", 80.0, -60.0
        )
        for i, v in enumerate([*normal, *beyond])
    ]

    _, _, states = reference(readings)
    assert states["temp-1"][0] < 100  # the state started afresh
    assert_same(readings, [37, 400, 640, 641])


def test_a_drift_the_state_followed_and_forgets_is_as_one_reading_at_a_time() -> None:
    normal = [20.0 + 0.1 * ((i % 5) - 2) for i in range(300)]
    ramp = [20.0 + 0.05 * i + 0.1 * ((i % 5) - 2) for i in range(1, 121)]
    readings = [
        ReadingRow(
            "temp-1", "temperature", v, "celsius", T0 + timedelta(seconds=i), "s", 80.0, -60.0
        )
        for i, v in enumerate([*normal, *ramp, 20.0, 20.1, 19.9])
    ]

    rows, _, states = reference(readings)
    assert max(rows[:, 11]) > EXCURSION  # one long run
    assert abs(states["temp-1"][1] - 20.0) < 0.1  # then back: the state forgot it
    assert_same(readings, [310, 419, 420, 421])


def test_a_state_from_a_checkpoint_of_the_previous_version_is_upgraded() -> None:
    readings = [
        ReadingRow(
            "temp-1", "temperature", v, "celsius", T0 + timedelta(seconds=i), "s", 80.0, None
        )
        for i, v in enumerate([20.3, 20.1, 25.0, 20.0])
    ]
    # The previous version kept ten fields: no mean and variance from before the run.
    previous: PreviousHistory = (500, 20.0, 0.04, 20.2, T0.timestamp() - 1, 0, 0, 0.1, 0.2, 1)
    upgraded: History = (*previous, 20.0, 0.04)

    out = SensorFeatures(DEFAULT_CATALOG)(readings, [0] * 4, [previous])
    expected = SensorFeatures(DEFAULT_CATALOG)(readings, [0] * 4, [upgraded])
    one_at_a_time = OneAtATime(DEFAULT_CATALOG)
    state: History | PreviousHistory = previous
    for reading, row in zip(readings, out.rows, strict=True):
        state, featured = one_at_a_time(state, reading)  # type: ignore[arg-type]
        assert np.array_equal(row, featured.row)

    assert np.array_equal(out.rows, expected.rows)
    assert out.states == expected.states == [state]
    assert len(out.states[0]) == len(upgraded)
