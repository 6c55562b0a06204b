"""IoT sensor readings and the rules that make one valid."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.domain.errors import (
    BatteryLevelOutOfRange,
    EventTimeInFuture,
    MalformedIdentifier,
    MissingIdentifier,
    ReadingOutOfRange,
    SignalStrengthOutOfRange,
    UnitMismatch,
    UnknownSensorType,
)
from pipeline.domain.time import require_utc

TEMPERATURE = "temperature"
HUMIDITY = "humidity"
PRESSURE = "pressure"

DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_IDENTIFIER_LENGTH = 200
"""Longest sensor id or location accepted (characters)."""
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorKind:
    """A type of sensor: its unit and the physically possible range of its values."""

    name: str
    unit: str
    physical_min: float
    physical_max: float


@dataclass(frozen=True, slots=True)
class SensorCatalog:
    """The sensor types the pipeline accepts; open to more via `with_kind`."""

    kinds: Mapping[str, SensorKind] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.kinds

    def __iter__(self) -> Iterator[SensorKind]:
        return iter(self.kinds.values())

    def kind(self, name: str) -> SensorKind:
        """The kind called `name`, or UnknownSensorType."""
        try:
            return self.kinds[name]
        except KeyError:
            known = ", ".join(sorted(self.kinds))
            raise UnknownSensorType(f"unknown sensor type {name!r}; known types: {known}") from None

    def with_kind(self, kind: SensorKind) -> SensorCatalog:
        """A catalog that also accepts `kind` (replacing a kind of the same name)."""
        return SensorCatalog({**self.kinds, kind.name: kind})

    @classmethod
    def of(cls, kinds: Iterable[SensorKind]) -> SensorCatalog:
        """A catalog holding exactly `kinds`."""
        return cls({k.name: k for k in kinds})


DEFAULT_CATALOG = SensorCatalog.of(
    [
        # Below absolute zero is impossible; above 1000 °C no ambient sensor survives.
        SensorKind(name=TEMPERATURE, unit="celsius", physical_min=-273.15, physical_max=1000.0),
        SensorKind(name=HUMIDITY, unit="percent", physical_min=0.0, physical_max=100.0),
        # Hectopascal: vacuum to ten atmospheres.
        SensorKind(name=PRESSURE, unit="hPa", physical_min=0.0, physical_max=10_000.0),
    ]
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One measurement taken by one sensor at one moment of event time."""

    sensor_id: str
    sensor_type: str
    value: float
    unit: str
    timestamp: datetime
    location: str
    battery_level: float | None = None
    """Percent, 0..100; None when the sensor is mains-powered or does not report it."""
    signal_strength: float | None = None
    """Received signal strength in dBm, -150..0; None when not reported."""

    @property
    def key(self) -> tuple[str, datetime]:
        """The natural key of a reading: one sensor measures once per instant."""
        return (self.sensor_id, self.timestamp)


def validate_reading(
    reading: Reading,
    *,
    now: datetime,
    catalog: SensorCatalog = DEFAULT_CATALOG,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> Reading:
    """Return `reading` if every rule holds, else raise the error named for the broken rule."""

    if not reading.sensor_id.strip():
        raise MissingIdentifier("sensor_id is empty")
    require_well_formed("sensor_id", reading.sensor_id)
    if not reading.location.strip():
        raise MissingIdentifier(f"sensor {reading.sensor_id}: location is empty")
    require_well_formed("location", reading.location)
    kind = catalog.kind(reading.sensor_type)
    if reading.unit != kind.unit:
        raise UnitMismatch(
            f"sensor {reading.sensor_id}: {kind.name} is measured in {kind.unit!r}, "
            f"got {reading.unit!r}"
        )
    if not math.isfinite(reading.value) or not (
        kind.physical_min <= reading.value <= kind.physical_max
    ):
        raise ReadingOutOfRange(
            f"sensor {reading.sensor_id}: {kind.name} value {reading.value} is outside the "
            f"physically possible range [{kind.physical_min}, {kind.physical_max}] {kind.unit}"
        )
    require_utc(reading.timestamp)
    if reading.timestamp - now > max_clock_skew:
        raise EventTimeInFuture(
            f"sensor {reading.sensor_id}: event time {reading.timestamp.isoformat()} is "
            f"{(reading.timestamp - now).total_seconds():.0f}s ahead of the clock "
            f"(allowed skew {max_clock_skew.total_seconds():.0f}s)"
        )
    battery = reading.battery_level
    if battery is not None and not (math.isfinite(battery) and 0.0 <= battery <= 100.0):
        raise BatteryLevelOutOfRange(
            f"sensor {reading.sensor_id}: battery level {battery} is outside 0..100 %"
        )
    signal = reading.signal_strength
    if signal is not None and not (math.isfinite(signal) and -150.0 <= signal <= 0.0):
        raise SignalStrengthOutOfRange(
            f"sensor {reading.sensor_id}: signal strength {signal} is outside -150..0 dBm"
        )
    return reading


def require_well_formed(name: str, value: str) -> None:
    """Raise MalformedIdentifier if `value` (an identifier called `name`) is too long or
    holds control characters."""
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise MalformedIdentifier(
            f"{name} is {len(value)} characters long; at most {MAX_IDENTIFIER_LENGTH} are allowed"
        )
    if _CONTROL_CHARACTERS.search(value):
        raise MalformedIdentifier(f"{name} {value!r} contains control characters")
