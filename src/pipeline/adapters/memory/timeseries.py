"""The time-series port in memory: the fake of the tests, with an outage switch."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.application.errors import TimeSeriesUnavailable
from pipeline.application.ports.timeseries import Point


class InMemoryTimeSeries:
    """Points by name (measurement, tags, millisecond): a point written again replaces the
    one stored, as InfluxDB does. With `unavailable` set, every call fails as a server that
    cannot be reached does."""

    def __init__(self) -> None:
        self._points: dict[tuple[str, tuple[tuple[str, str], ...], int], Point] = {}
        self.unavailable = False
        self.writes = 0
        """Calls of `write` that stored points (a batch the outage refused is not counted)."""

    async def write(self, points: Sequence[Point]) -> None:
        """Store the points, replacing those named alike."""
        self._check()
        for point in points:
            self._points[point.identity()] = point
        self.writes += 1

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
