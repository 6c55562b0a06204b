"""Clocks and timers: the system's, a manual clock for tests, and a virtual clock that runs a
simulated day in a second."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta


class SystemClock:
    """The machine's wall clock, in UTC."""

    def now(self) -> datetime:
        """The current time, tz-aware UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        """The clock's current time."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        self._now += delta


class MonotonicTimer:
    """The machine's monotonic clock, and waits on the event loop."""

    def monotonic(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep `seconds`, or less if `stop` is set meanwhile. Waiting 0 still lets other
        tasks run (the consumers of an in-process log)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))


class VirtualClock:
    """A clock and a timer in one, whose time passes only by waiting on it: a wait of an hour
    returns at once, an hour later on the clock. Simulations run a day in a second with it."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._elapsed = 0.0

    def now(self) -> datetime:
        """The start plus every second waited so far."""
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        """Seconds waited so far."""
        return self._elapsed

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Advance the clock by `seconds` (unless `stop` is set) and let other tasks run."""
        if not stop.is_set():
            self._elapsed += max(seconds, 0.0)
        await asyncio.sleep(0)
