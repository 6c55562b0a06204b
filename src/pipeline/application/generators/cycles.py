"""What the shop, payment and social generators share: event time as integer microseconds,
a daily traffic cycle, and arrivals that follow it.

Traffic at event time t is `rate · (1 + depth · cos(2π (t − peak) / day))`: its mean over a
day is `rate`, it peaks at `peak_hour` UTC and bottoms out twelve hours later at
`1 − depth` of the mean. Arrivals are a Poisson process with that intensity, drawn by
thinning (candidates at the peak rate, each kept with probability intensity / peak).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.application.errors import ConfigurationError
from pipeline.domain.time import to_epoch_micros

DAY_US = 86_400_000_000
SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
_OMEGA = 2.0 * math.pi / DAY_US


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyCycle:
    """A day's traffic shape: peak hour (UTC) and how deep the night-time trough is."""

    peak_hour: float
    depth: float
    """0: flat traffic; 0.6: the trough has 40 % of the mean, the peak 160 %."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.depth < 1.0 or not 0.0 <= self.peak_hour < 24.0:
            raise ConfigurationError("a daily cycle needs 0 <= depth < 1 and 0 <= peak_hour < 24")

    def factor(self, micros: int) -> float:
        """Traffic at event time `micros` (since the epoch) relative to the daily mean."""
        return 1.0 + self.depth * math.cos(_OMEGA * (micros - self.peak_hour * HOUR_US))

    def mean_factor(self, start: datetime, end: datetime) -> float:
        """The mean of `factor` over [start, end) (1 over whole days)."""
        a, b = to_epoch_micros(start), to_epoch_micros(end)
        if b <= a:
            return self.factor(a)
        peak = self.peak_hour * HOUR_US
        swing = math.sin(_OMEGA * (b - peak)) - math.sin(_OMEGA * (a - peak))
        return 1.0 + self.depth * swing / (_OMEGA * (b - a))

    def span_before(self, end: datetime, *, events: float, rate: float) -> timedelta:
        """How long before `end` a stream of mean `rate` events/s must start to hold
        `events` events by `end`, on average."""
        if events <= 0:
            return timedelta(0)
        # The mean factor is at least 1 - depth: that bounds the span; then bisect.
        low, high = 0.0, events / (rate * (1.0 - self.depth))
        for _ in range(60):
            mid = (low + high) / 2.0
            start = end - timedelta(seconds=mid)
            if rate * mid * self.mean_factor(start, end) < events:
                low = mid
            else:
                high = mid
        return timedelta(seconds=high)


class Arrivals:
    """Poisson arrivals at `rate` per second on average, shaped by `cycle`, from `start_us`."""

    __slots__ = ("_cycle", "_depth", "_gap_rate", "_now", "_rng")

    def __init__(self, rng: random.Random, *, rate: float, cycle: DailyCycle, start_us: int):
        if rate <= 0:
            raise ConfigurationError(f"an arrival rate must be positive, not {rate}")
        self._rng = rng
        self._cycle = cycle
        self._depth = 1.0 + cycle.depth
        # Candidates at the peak rate, per microsecond.
        self._gap_rate = rate * self._depth / SECOND_US
        self._now = start_us

    def next(self) -> int:
        """The event time (µs since the epoch) of the next arrival."""
        rng = self._rng
        factor = self._cycle.factor
        now = self._now
        while True:
            now += int(rng.expovariate(self._gap_rate)) + 1
            if rng.random() * self._depth < factor(now):
                self._now = now
                return now
