"""The time-series port in memory: the fake of the tests, with an outage switch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.application.errors import TimeSeriesRejected, TimeSeriesUnavailable
from pipeline.application.ports.timeseries import Point


class InMemoryTimeSeries:
    """Points by name (measurement, tags, millisecond): a point written again replaces the
    one stored, as InfluxDB does. Switches: with `unavailable` set, every call fails as a
    server that cannot be reached does; a write holding a point `refuse` is true of is
    refused whole, as a server refuses a request with a point it cannot parse."""

    def __init__(self, refuse: Callable[[Point], bool] | None = None) -> None:
        self._points: dict[tuple[str, tuple[tuple[str, str], ...], int], Point] = {}
        self.unavailable = False
        self.refuse = refuse

    async def write(self, points: Sequence[Point]) -> None:
        """Store the points, replacing those named alike."""
        self._check()
        refused = [p for p in points if self.refuse is not None and self.refuse(p)]
        if refused:
            raise TimeSeriesRejected(f"time-series server memory:// refused {refused[0]}")
        for point in points:
            self._points[point.identity()] = point

    async def ping(self) -> None:
        """Answer, unless `unavailable`."""
        self._check()

    async def close(self) -> None:
        """Nothing to release."""

    def points(self, measurement: str | None = None) -> list[Point]:
        """The stored points (of one measurement), in time order."""
        found = [p for p in self._points.values() if measurement in {None, p.measurement}]
        return sorted(found, key=lambda p: (p.time, p.identity()))

    def _check(self) -> None:
        if self.unavailable:
            raise TimeSeriesUnavailable("time-series server memory:// unreachable (simulated)")
