"""A seeded fleet of IoT sensors: realistic readings with labelled, injected anomalies.

Each sensor draws from its own `random.Random`, seeded from (stream seed, sensor index), so a
sensor's readings do not depend on how many other sensors the fleet has. A reading's value is

    base + amplitude · sin(daily cycle) + slow bounded drift + gaussian noise

with a battery that drains, a noisy signal strength, occasional gaps (the sensor is offline and
emits nothing) and, at `anomaly_rate`, an injected anomaly labelled with ground truth:

    spike   one reading far off, always beyond a warning threshold of DEFAULT_THRESHOLDS
    stuck   the sensor repeats its last value for a while
    drift   the value ramps steadily away from normal, then snaps back

Normal readings stay well inside the warning thresholds, and every reading, anomalous or not,
is physically possible, so all of them pass `validate_reading`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import AnomalyLabel, Generated
from pipeline.application.generators.sensor_profiles import SENSOR_PROFILES
from pipeline.domain.sensors import DEFAULT_CATALOG, HUMIDITY, PRESSURE, TEMPERATURE, Reading
from pipeline.domain.time import require_utc

_DAY_SECONDS = 86_400.0
_OMEGA = 2.0 * math.pi / _DAY_SECONDS


class SensorAnomalyKind(StrEnum):
    """The anomalies the sensor generator injects."""

    SPIKE = "spike"
    STUCK = "stuck"
    DRIFT = "drift"


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorFleetConfig:
    """The shape of a generated sensor fleet."""

    sensors: int = 100
    """How many sensors emit; their types cycle through `sensor_types`."""
    first_sensor: int = 0
    """Index of the first sensor, so several producers can each generate a slice of a fleet."""
    sensor_types: tuple[str, ...] = (TEMPERATURE, HUMIDITY, PRESSURE)
    interval: timedelta = timedelta(seconds=1)
    """Event time between two readings of one sensor."""
    anomaly_rate: float = 0.001
    """Probability that a normal reading starts an anomaly (a stuck or drift anomaly then
    spans several labelled readings)."""
    anomaly_kinds: tuple[SensorAnomalyKind, ...] = tuple(SensorAnomalyKind)
    gap_rate: float = 0.0005
    """Probability that a sensor goes offline at a reading instead of emitting it."""
    gap_readings: tuple[int, int] = (30, 600)
    """How many readings an offline sensor misses, at least and at most."""
    sensors_per_site: int = 25

    def __post_init__(self) -> None:
        if self.sensors < 1 or self.first_sensor < 0 or self.sensors_per_site < 1:
            raise ConfigurationError("a sensor fleet needs at least one sensor per site")
        if self.interval <= timedelta(0):
            raise ConfigurationError(f"sensor interval {self.interval} must be positive")
        if min(self.anomaly_rate, self.gap_rate) < 0.0 or self.anomaly_rate + self.gap_rate > 1.0:
            raise ConfigurationError("anomaly_rate and gap_rate must be probabilities")
        unknown = set(self.sensor_types) - set(SENSOR_PROFILES)
        if not self.sensor_types or unknown:
            raise ConfigurationError(
                f"cannot generate sensor types {sorted(unknown)}; known: {sorted(SENSOR_PROFILES)}"
            )
        if not self.anomaly_kinds:
            raise ConfigurationError("anomaly_kinds must name at least one kind")
        low, high = self.gap_readings
        if not 1 <= low <= high:
            raise ConfigurationError(f"gap_readings {self.gap_readings} is not a range >= 1")


class _Sensor:
    """The fixed parameters and the evolving state of one simulated sensor."""

    __slots__ = (
        "amplitude", "anomalies", "anomaly_kind", "anomaly_label", "anomaly_left", "base",
        "battery", "drain", "drift", "drift_bound", "drift_slope", "drift_step", "last_value",
        "location", "noise", "offline_left", "offset", "phase", "physical_max", "physical_min",
        "profile", "ramp", "rng", "scale", "sensor_id", "sensor_type", "signal_base",
        "stuck_value", "unit",
    )  # fmt: skip

    def __init__(self, *, seed: int, index: int, config: SensorFleetConfig) -> None:
        # A string seed is hashed with SHA-512 by `random`, identically in every process.
        rng = self.rng = random.Random(f"pipeline.sensors/{seed}/{index}")
        types = config.sensor_types
        self.sensor_type = types[index % len(types)]
        profile = self.profile = SENSOR_PROFILES[self.sensor_type]
        kind = DEFAULT_CATALOG.kind(self.sensor_type)
        self.unit, self.physical_min, self.physical_max = (
            kind.unit,
            kind.physical_min,
            kind.physical_max,
        )
        self.sensor_id = f"{profile.prefix}-{index // len(types) + 1:04d}"
        self.location = f"site-{index // config.sensors_per_site + 1:02d}/floor-{rng.randint(1, 5)}"
        interval_s = config.interval.total_seconds()
        self.offset = timedelta(
            microseconds=rng.randrange(max(1, config.interval // timedelta(microseconds=1)))
        )
        self.base = rng.uniform(*profile.base)
        self.amplitude = rng.uniform(*profile.amplitude)
        peak = (profile.peak_hour + rng.uniform(-1.0, 1.0)) * 3600.0
        # sin(ω·t + φ) peaks where ω·t + φ = π/2; t is seconds into the event-time day.
        self.phase = math.pi / 2 - _OMEGA * (peak - self.offset.total_seconds())
        self.noise = profile.noise
        # round(x * scale) / scale is round(x, decimals), at a third of the cost.
        self.scale = 10.0**profile.decimals
        self.drift = 0.0
        self.drift_bound = profile.drift_bound
        self.drift_step = min(
            profile.drift_bound * 0.004 * math.sqrt(interval_s), profile.drift_bound * 0.1
        )
        on_battery = rng.random() < profile.battery_share
        self.battery: float | None = rng.uniform(30.0, 100.0) if on_battery else None
        # Percent per reading: a full battery lasts 30 to 120 days of event time.
        self.drain = 100.0 / rng.uniform(30 * _DAY_SECONDS, 120 * _DAY_SECONDS) * interval_s
        self.signal_base = rng.uniform(-95.0, -55.0)
        self.offline_left = 0
        self.anomalies = 0
        self.anomaly_left = 0
        self.anomaly_kind = SensorAnomalyKind.SPIKE
        self.anomaly_label: AnomalyLabel | None = None
        self.stuck_value = 0.0
        self.drift_slope = 0.0
        self.ramp = 0.0
        self.last_value: float | None = None

    def start_anomaly(self, kinds: tuple[SensorAnomalyKind, ...], normal: float) -> None:
        """Begin a new anomaly, chosen and shaped by the sensor's own random stream."""
        rng = self.rng
        kind = self.anomaly_kind = kinds[rng.randrange(len(kinds))]
        self.anomalies += 1
        self.anomaly_label = AnomalyLabel(
            kind=kind, anomaly_id=f"{self.sensor_id}/anomaly-{self.anomalies:06d}"
        )
        profile = self.profile
        if kind is SensorAnomalyKind.SPIKE:
            self.anomaly_left = 1
            bounds = profile.spike_high if rng.random() < 0.6 else profile.spike_low
            self.stuck_value = round(rng.uniform(*bounds) * self.scale) / self.scale
        elif kind is SensorAnomalyKind.STUCK:
            self.anomaly_left = rng.randint(10, 60)
            self.stuck_value = normal if self.last_value is None else self.last_value
        else:
            self.anomaly_left = rng.randint(30, 180)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            self.drift_slope = sign * rng.uniform(*profile.drift_excursion) / self.anomaly_left
            self.ramp = 0.0

    def anomalous_value(self, normal: float) -> float:
        """The value of the next reading of the running anomaly, clamped to physics."""
        self.anomaly_left -= 1
        if self.anomaly_kind is SensorAnomalyKind.DRIFT:
            self.ramp += self.drift_slope
            value = round((normal + self.ramp) * self.scale) / self.scale
        else:
            value = self.stuck_value
        return min(max(value, self.physical_min), self.physical_max)


def generate_readings(
    *, seed: int, start: datetime, config: SensorFleetConfig = SensorFleetConfig()
) -> Iterator[Generated[Reading]]:
    """The infinite reading stream of fleet `seed`, from event time `start` (tz-aware UTC).

    Each sensor reads every `config.interval` at its own fixed offset within the interval;
    the stream is in increasing event time. Take a finite part with `itertools.islice`.

    Event time runs ahead of the wall clock when the stream is consumed faster than real
    time, and `validate_reading` rejects readings beyond its clock skew: a producer lays the
    stream out and paces it with `generators.production`."""
    require_utc(start, "generator start")
    sensors = [
        _Sensor(seed=seed, index=index, config=config)
        for index in range(config.first_sensor, config.first_sensor + config.sensors)
    ]
    sensors.sort(key=lambda s: s.offset)
    return _stream(sensors, start, config)


def _stream(
    sensors: list[_Sensor], start: datetime, config: SensorFleetConfig
) -> Iterator[Generated[Reading]]:
    # The hot loop: one pass per sensor per reading, so names are bound locally and the
    # per-reading work is a few random draws, one sine and two object constructions.
    interval = config.interval
    interval_s = interval.total_seconds()
    anomaly_rate = config.anomaly_rate
    gap_threshold = anomaly_rate + config.gap_rate
    gap_low, gap_high = config.gap_readings
    kinds = config.anomaly_kinds
    sin = math.sin
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    day_second = (start - midnight).total_seconds()
    tick = start
    while True:
        angle = _OMEGA * day_second
        for s in sensors:
            battery = s.battery
            if battery is not None:
                battery -= s.drain
                # A flat battery is swapped for a fresh one.
                s.battery = battery = 100.0 if battery < 5.0 else battery
            if s.offline_left:
                s.offline_left -= 1
                continue
            rng = s.rng
            gauss = rng.gauss
            drift = s.drift + (rng.random() - 0.5) * s.drift_step
            bound = s.drift_bound
            s.drift = drift = bound if drift > bound else -bound if drift < -bound else drift
            scale = s.scale
            normal = (
                round(
                    (s.base + s.amplitude * sin(angle + s.phase) + drift + gauss(0.0, s.noise))
                    * scale
                )
                / scale
            )
            label = None
            if s.anomaly_left:
                label = s.anomaly_label
                value = s.anomalous_value(normal)
            else:
                roll = rng.random()
                if roll < anomaly_rate:
                    s.start_anomaly(kinds, normal)
                    label = s.anomaly_label
                    value = s.anomalous_value(normal)
                elif roll < gap_threshold:
                    s.offline_left = rng.randint(gap_low, gap_high) - 1
                    continue
                else:
                    value = normal
            s.last_value = value
            reading = Reading(
                sensor_id=s.sensor_id,
                sensor_type=s.sensor_type,
                value=value,
                unit=s.unit,
                timestamp=tick + s.offset,
                location=s.location,
                battery_level=None if battery is None else round(battery * 10.0) / 10.0,
                signal_strength=round((s.signal_base + (rng.random() - 0.5) * 8.0) * 10.0) / 10.0,
            )
            yield Generated(event=reading, label=label)
        tick += interval
        day_second = (day_second + interval_s) % _DAY_SECONDS
