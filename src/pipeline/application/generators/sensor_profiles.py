"""How each sensor type behaves in the generated fleet: the ranges a simulated sensor's
parameters are drawn from, its daily peak, noise, drift, anomaly shapes and power supply."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.domain.sensors import HUMIDITY, PRESSURE, TEMPERATURE


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorProfile:
    """How one sensor type behaves: ranges the per-sensor parameters are drawn from."""

    prefix: str
    base: tuple[float, float]
    amplitude: tuple[float, float]
    peak_hour: float
    """Hour of the event-time day (UTC) at which the daily cycle peaks, ± one hour."""
    noise: float
    drift_bound: float
    spike_high: tuple[float, float]
    spike_low: tuple[float, float]
    drift_excursion: tuple[float, float]
    decimals: int
    battery_share: float
    """Share of sensors of this type that run on battery (the rest are mains-powered)."""


# Normal extremes (base ± amplitude ± drift ± 6 sigma of noise) stay well inside the warning
# thresholds of DEFAULT_THRESHOLDS; spike ranges lie wholly beyond them.
# fmt: off
SENSOR_PROFILES = {
    TEMPERATURE: SensorProfile(
        prefix="temp", base=(16.0, 24.0), amplitude=(2.0, 6.0), peak_hour=15.0, noise=0.15,
        drift_bound=2.0, spike_high=(47.0, 90.0), spike_low=(-40.0, -12.0),
        drift_excursion=(8.0, 25.0), decimals=2, battery_share=0.9,
    ),
    HUMIDITY: SensorProfile(
        prefix="hum", base=(40.0, 60.0), amplitude=(4.0, 12.0), peak_hour=5.0, noise=0.4,
        drift_bound=3.0, spike_high=(92.0, 100.0), spike_low=(0.0, 8.0),
        drift_excursion=(10.0, 25.0), decimals=1, battery_share=0.9,
    ),
    PRESSURE: SensorProfile(
        prefix="pres", base=(1005.0, 1020.0), amplitude=(0.5, 2.0), peak_hour=10.0, noise=0.2,
        drift_bound=8.0, spike_high=(1055.0, 1150.0), spike_low=(850.0, 945.0),
        drift_excursion=(15.0, 40.0), decimals=1, battery_share=0.0,
    ),
}
# fmt: on
