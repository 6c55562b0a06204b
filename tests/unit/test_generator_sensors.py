"""Specification of the seeded sensor fleet generator."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from itertools import islice, pairwise
from statistics import fmean

import pytest

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators import (
    GENERATORS,
    Generated,
    SensorAnomalyKind,
    SensorFleetConfig,
    generate_readings,
    generator_named,
)
from pipeline.domain import (
    DEFAULT_THRESHOLDS,
    TEMPERATURE,
    EventTimeNotUtc,
    Reading,
    check_thresholds,
    validate_reading,
)

START = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
LONG_RUN = 100_000


def take(
    count: int, *, seed: int = 7, config: SensorFleetConfig | None = None
) -> list[Generated[Reading]]:
    stream = generate_readings(seed=seed, start=START, config=config or SensorFleetConfig())
    return list(islice(stream, count))


@pytest.fixture(scope="module")
def long_run() -> list[Generated[Reading]]:
    """About a quarter of an hour of event time of the default 100-sensor fleet."""
    return take(LONG_RUN)


def by_sensor(items: list[Generated[Reading]]) -> dict[str, list[Generated[Reading]]]:
    grouped: dict[str, list[Generated[Reading]]] = defaultdict(list)
    for item in items:
        grouped[item.event.sensor_id].append(item)
    return grouped


def test_same_seed_and_start_give_an_identical_stream() -> None:
    assert take(5_000) == take(5_000)


def test_different_seeds_give_different_streams() -> None:
    assert [g.event.value for g in take(1_000, seed=1)] != [
        g.event.value for g in take(1_000, seed=2)
    ]


def test_global_random_state_does_not_change_the_stream() -> None:
    random.seed(1)
    first = take(2_000)
    random.seed(2)
    random.random()

    assert take(2_000) == first


DIGEST_SCRIPT = """
import hashlib, itertools
from datetime import UTC, datetime
from pipeline.application.generators import generate_readings
stream = generate_readings(seed=7, start=datetime(2026, 5, 1, tzinfo=UTC))
print(hashlib.sha256(repr(list(itertools.islice(stream, 3_000))).encode()).hexdigest())
"""


def test_stream_is_byte_identical_in_other_processes_with_other_hash_seeds() -> None:
    digests = {
        subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    here = hashlib.sha256(repr(take(3_000)).encode()).hexdigest()

    assert digests == {here}


def test_a_sensor_stream_does_not_depend_on_the_fleet_size() -> None:
    small = by_sensor(take(3 * 500, config=SensorFleetConfig(sensors=3)))
    large = by_sensor(take(100 * 500, config=SensorFleetConfig(sensors=100)))

    assert small["temp-0001"] == large["temp-0001"][: len(small["temp-0001"])]


def test_fleet_slices_together_make_the_whole_fleet() -> None:
    whole = by_sensor(take(10 * 300, config=SensorFleetConfig(sensors=10)))
    low = by_sensor(take(4 * 300, config=SensorFleetConfig(sensors=4)))
    high = by_sensor(take(6 * 300, config=SensorFleetConfig(sensors=6, first_sensor=4)))

    assert sorted(whole) == sorted(low | high)
    for sensor_id, items in (low | high).items():
        assert whole[sensor_id][:200] == items[:200]


def test_default_fleet_mixes_the_three_types_with_readable_ids_and_locations() -> None:
    first_tick = take(100, config=SensorFleetConfig(gap_rate=0.0))
    ids = {g.event.sensor_id for g in first_tick}

    assert Counter(g.event.sensor_type for g in first_tick) == {
        "temperature": 34,
        "humidity": 33,
        "pressure": 33,
    }
    assert {"temp-0001", "temp-0034", "hum-0001", "hum-0033", "pres-0033"} <= ids
    assert {g.event.location.split("/")[0] for g in first_tick} == {
        "site-01",
        "site-02",
        "site-03",
        "site-04",
    }
    assert all(g.event.location.split("/")[1].startswith("floor-") for g in first_tick)


def test_every_default_reading_is_valid(long_run: list[Generated[Reading]]) -> None:
    for item in long_run:
        validate_reading(item.event, now=item.event.timestamp)


def test_stream_is_in_increasing_event_time(long_run: list[Generated[Reading]]) -> None:
    times = [g.event.timestamp for g in long_run]

    assert times[0] >= START
    assert all(earlier < later for earlier, later in pairwise(times))


def test_each_sensor_reads_every_interval_except_across_gaps(
    long_run: list[Generated[Reading]],
) -> None:
    interval = SensorFleetConfig().interval
    steps: Counter[timedelta] = Counter()
    for items in by_sensor(long_run).values():
        times = [g.event.timestamp for g in items]
        steps.update(later - earlier for earlier, later in pairwise(times))

    assert all(step % interval == timedelta(0) and step >= interval for step in steps)
    gaps = sum(count for step, count in steps.items() if step > interval)
    assert steps[interval] > 0.99 * steps.total()
    assert gaps > 0


def test_gaps_can_be_switched_off() -> None:
    items = take(50 * 400, config=SensorFleetConfig(sensors=50, gap_rate=0.0))

    assert all(len(readings) == 400 for readings in by_sensor(items).values())


def test_anomalies_start_at_about_the_configured_rate_and_take_every_kind() -> None:
    items = take(100_000, config=SensorFleetConfig(anomaly_rate=0.005))
    labels = [g.label for g in items if g.label is not None]
    normal = sum(1 for g in items if g.label is None)
    kinds_by_anomaly = {label.anomaly_id: label.kind for label in labels}

    # Anomalies start only from normal readings, so that is the rate's denominator.
    assert 0.8 * 0.005 * normal < len(kinds_by_anomaly) < 1.2 * 0.005 * normal
    assert set(kinds_by_anomaly.values()) == set(SensorAnomalyKind)


def test_default_rate_labels_few_readings(long_run: list[Generated[Reading]]) -> None:
    anomalies = {g.label.anomaly_id for g in long_run if g.label is not None}

    assert 0.5 * 0.001 * LONG_RUN < len(anomalies) < 1.5 * 0.001 * LONG_RUN


def test_only_configured_anomaly_kinds_are_injected() -> None:
    config = SensorFleetConfig(anomaly_rate=0.01, anomaly_kinds=(SensorAnomalyKind.STUCK,))

    kinds = {g.label.kind for g in take(20_000, config=config) if g.label is not None}

    assert kinds == {SensorAnomalyKind.STUCK}


def test_every_spike_crosses_a_threshold() -> None:
    config = SensorFleetConfig(anomaly_rate=0.01, anomaly_kinds=(SensorAnomalyKind.SPIKE,))
    spikes = [g for g in take(50_000, config=config) if g.label is not None]

    assert len(spikes) > 100
    assert all(check_thresholds(g.event, DEFAULT_THRESHOLDS) is not None for g in spikes)


def test_anomalous_readings_stay_physically_possible() -> None:
    items = take(50_000, config=SensorFleetConfig(anomaly_rate=0.02))
    anomalous = [g for g in items if g.label is not None]

    # 2% of the normal readings start an anomaly and each anomaly labels one reading or more:
    # well over a thousand labelled readings, of every kind, all of them valid.
    assert len(anomalous) > 1_000
    assert {g.label.kind for g in anomalous if g.label is not None} == set(SensorAnomalyKind)
    for item in anomalous:
        validate_reading(item.event, now=item.event.timestamp)


def test_normal_readings_raise_no_threshold_alert(long_run: list[Generated[Reading]]) -> None:
    alerting = [
        g.event
        for g in long_run
        if g.label is None and check_thresholds(g.event, DEFAULT_THRESHOLDS) is not None
    ]

    assert alerting == []


def test_a_stuck_sensor_repeats_one_value() -> None:
    config = SensorFleetConfig(anomaly_rate=0.01, anomaly_kinds=(SensorAnomalyKind.STUCK,))
    values: dict[str, set[float]] = defaultdict(set)
    for item in take(30_000, config=config):
        if item.label is not None:
            values[item.label.anomaly_id].add(item.event.value)

    assert values
    assert all(len(repeated) == 1 for repeated in values.values())


def test_an_anomaly_labels_consecutive_readings_of_one_sensor() -> None:
    config = SensorFleetConfig(anomaly_rate=0.01, gap_rate=0.0)
    sensors_by_anomaly: dict[str, set[str]] = defaultdict(set)
    for items in by_sensor(take(30_000, config=config)).values():
        ids = [g.label.anomaly_id if g.label else None for g in items]
        runs = [a for a, b in zip(ids, [None, *ids], strict=False) if a is not None and a != b]
        assert len(runs) == len(set(runs))
        for item in items:
            if item.label is not None:
                sensors_by_anomaly[item.label.anomaly_id].add(item.event.sensor_id)

    assert all(len(sensors) == 1 for sensors in sensors_by_anomaly.values())


def test_temperature_follows_a_daily_cycle() -> None:
    config = SensorFleetConfig(
        sensors=30, sensor_types=(TEMPERATURE,), interval=timedelta(minutes=5), anomaly_rate=0.0
    )
    day = take(30 * 288, config=config)

    def mean_at(hour: int) -> float:
        return fmean(g.event.value for g in day if g.event.timestamp.hour == hour)

    assert mean_at(15) > mean_at(3) + 3.0


def test_battery_drains_and_signal_strength_varies() -> None:
    config = SensorFleetConfig(sensors=3, interval=timedelta(minutes=10), gap_rate=0.0)
    temp = [g.event for g in take(3 * 1_000, config=config) if g.event.sensor_id == "temp-0001"]
    batteries = [r.battery_level for r in temp if r.battery_level is not None]

    assert len(batteries) == len(temp)
    assert batteries[-1] < batteries[0]
    assert len({r.signal_strength for r in temp}) > 10


def test_start_must_be_utc() -> None:
    with pytest.raises(EventTimeNotUtc):
        generate_readings(seed=1, start=datetime(2026, 5, 1))
    with pytest.raises(EventTimeNotUtc):
        generate_readings(seed=1, start=datetime(2026, 5, 1, tzinfo=timezone(timedelta(hours=2))))


@pytest.mark.parametrize(
    "changes",
    [
        {"sensors": 0},
        {"first_sensor": -1},
        {"interval": timedelta(0)},
        {"anomaly_rate": -0.1},
        {"anomaly_rate": 0.7, "gap_rate": 0.4},
        {"sensor_types": ("radiation",)},
        {"sensor_types": ()},
        {"anomaly_kinds": ()},
        {"gap_readings": (5, 2)},
        {"gap_readings": (0, 2)},
    ],
)
def test_impossible_fleet_settings_are_a_configuration_error(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SensorFleetConfig(**changes)  # type: ignore[arg-type]


def test_sensor_generator_is_registered_by_name() -> None:
    assert generator_named("sensors") is generate_readings
    assert "sensors" in GENERATORS


def test_unknown_generator_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="known: payments, sensors, shop, social"):
        generator_named("weather")
