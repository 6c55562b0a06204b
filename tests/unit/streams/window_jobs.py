"""Builders for the window tests: one event type, one job shape, times in seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.streams import Aggregate, Count, Job, Sink, Window, Windowed, to_millis
from pipeline.streams.testing import TestDriver
from pipeline.streams.windows import WindowKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""Second 0 of every test's event time, and the wall clock a driver starts at."""

TOPIC = "events"
RESULTS = Sink("results", Windowed, "window results")
LATE = Sink("late", object, "records routed by .late()")


@dataclass(frozen=True, slots=True)
class Event:
    """A keyed value at second `at` after T0; `id` tells equal events apart."""

    key: str
    at: float
    value: float = 1.0
    id: int = 0

    @property
    def time(self) -> datetime:
        return T0 + timedelta(seconds=self.at)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def window(start: float, end: float) -> Window:
    """The window [start, end) in seconds after T0."""
    return Window(to_millis(T0 + seconds(start)), to_millis(T0 + seconds(end)))


def ms(at: float) -> int:
    """Second `at` after T0 in epoch milliseconds."""
    return to_millis(T0 + seconds(at))


def windowed_job(
    kind: WindowKind,
    aggregate: Aggregate[Event, Any, Any] | None = None,
    *,
    final: bool = True,
    out_of_orderness: float = 0,
    idle_timeout: float = 30,
    route_late: bool = False,
    every: float | None = None,
) -> Job:
    """events → window(kind) → aggregate (a count by default) → results [, late]; updates
    (`final` False) at most once per `every` seconds when given."""
    job = Job(
        "windows",
        out_of_orderness=seconds(out_of_orderness),
        idle_timeout=seconds(idle_timeout),
    )
    source = job.source(TOPIC, Event, key=lambda e: e.key, event_time=lambda e: e.time)
    aggregated = source.window(kind, step="window").aggregate(aggregate or Count())
    late = aggregated.late() if route_late else None
    every_ = None if every is None else seconds(every)
    (aggregated.final() if final else aggregated.updates(every=every_)).to(RESULTS)
    if late is not None:
        late.to(LATE)
    return job


def driver_for(job: Job, *, partitions: int = 1) -> TestDriver:
    return TestDriver(job, partitions=partitions, now=T0)


def send(driver: TestDriver, *events: Event, partition: int | None = None) -> None:
    for event in events:
        driver.send(TOPIC, event, partition=partition)


def results(driver: TestDriver) -> list[tuple[str, Window, Any, bool]]:
    """The committed window results as (key, window, value, final)."""
    return [(r.key, r.window, r.value, r.final) for r in driver.results("results")]
