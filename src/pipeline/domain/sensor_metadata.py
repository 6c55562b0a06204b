"""What operators state about one sensor: where it is, and its own alert limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.domain.alerts import Threshold


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorMetadata:
    """A row of the `sensor_metadata` reference table. Each limit set here replaces the
    sensor type's limit for this sensor; a limit left None keeps the type's."""

    sensor_id: str
    location: str | None = None
    low: float | None = None
    high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None

    def threshold_over(self, base: Threshold) -> Threshold:
        """This sensor's limits over its type's `base` limits, bound by bound."""
        return Threshold(
            sensor_type=base.sensor_type,
            low=base.low if self.low is None else self.low,
            high=base.high if self.high is None else self.high,
            critical_low=base.critical_low if self.critical_low is None else self.critical_low,
            critical_high=base.critical_high if self.critical_high is None else self.critical_high,
        )


def sensor_threshold(
    sensor_type: str, metadata: SensorMetadata | None, thresholds: Mapping[str, Threshold]
) -> Threshold | None:
    """The limits of a sensor of `sensor_type`: its row's limits over its type's in
    `thresholds` when it has a row, else its type's (None: neither sets any)."""
    base = thresholds.get(sensor_type)
    if metadata is None:
        return base
    return metadata.threshold_over(base or Threshold(sensor_type=sensor_type))
