"""When a producer run's events happen and when they are released: never later than the clock.

- **At a fixed rate** the stream starts now, and each event is released once the timer has run
  as long as its event time lies past the start. Pacing follows event time, not the number of
  events sent, so what a generator skips (a sensor that is offline emits nothing) never pushes
  event time ahead of the clock, however long the run.
- **As fast as possible** (rate 0, with a count) the readings are laid out to end now: the
  generator runs once to measure the span its first `count` readings cover, gaps included,
  and then again from that span before now. The measuring pass costs about 4 µs per reading.
  The shop, payment and social streams follow a daily cycle that depends on the start, so a
  measuring pass would not measure the second run: they start early enough, by the cycle's
  expected volume plus a margin, for their `count` events to end shortly before now
  (`planned_events`), and `released` holds any that would still lie ahead of the clock.

A shop, payment or social run is `LANES` lanes merged by event time (`base.Lane`: each lane
draws its own sessions, accounts or posts), so that N processes can each generate only their
lanes (`lanes_of`) and together publish the one-process run. `--count` is shared out among
the lanes (`lane_count`), so it means the same total whatever the number of processes.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import Generated, Lane
from pipeline.application.generators.cycles import DailyCycle
from pipeline.application.generators.sensors import SensorFleetConfig, generate_readings
from pipeline.domain.sensors import Reading

if TYPE_CHECKING:
    import asyncio

    from pipeline.application.ports import Timer

T = TypeVar("T")

RESOLUTION_S = 0.02
"""Shortest wait of a paced release: events due within it go out together, up to this late."""
YIELD_EVERY = 500
"""Events released without a wait before other tasks get a turn (an in-process consumer)."""
AS_FAST_AS_POSSIBLE_INTERVAL = timedelta(seconds=1)
"""Event time between two readings of one sensor when the run is not paced."""
LANES = 12
"""Lanes of a shop, payment or social run: at most this many processes share one (12 lanes
share out evenly among 1, 2, 3, 4 or 6)."""


def lanes_of(process: int, processes: int) -> tuple[Lane, ...]:
    """The lanes process `process` (from 0) of `processes` generates: every `processes`-th."""
    if not 0 < processes <= LANES or not 0 <= process < processes:
        raise ConfigurationError(f"a run has {LANES} lanes: 1 to {LANES} processes share it")
    return tuple(Lane(index, LANES) for index in range(process, LANES, processes))


def lane_count(count: int, lane: Lane) -> int:
    """How many of a run's `count` events `lane` generates: an equal share, the first
    `count % lanes` lanes one more, so that the lanes' counts add up to `count`."""
    share, left = divmod(count, lane.of)
    return share + (lane.index < left)


def start_ending_at(
    stream_from: Callable[[datetime], Iterator[Generated[T]]],
    *,
    count: int,
    end: datetime,
    event_time: Callable[[T], datetime],
) -> datetime:
    """The start from which the first `count` events of `stream_from(start)` end at `end`.

    Runs the generator once from `end` to measure the span. Valid for a generator whose events
    all move with its start (the sensor fleet's do: only the daily cycle of the values and
    the event times depend on it, never which readings are emitted)."""
    last = end
    for item in itertools.islice(stream_from(end), count):
        last = max(last, event_time(item.event))
    return end - (last - end)


def planned_readings(
    *,
    seed: int,
    now: datetime,
    count: int | None,
    rate: float,
    fleet: SensorFleetConfig | None = None,
) -> Iterator[Generated[Reading]]:
    """The readings of a producer run, laid out in event time (`count` None: endless).

    At a fixed `rate` (readings per second of the whole fleet while every sensor is online)
    each sensor reads every `sensors / rate` seconds from `now`; `released(…, start=now)`
    then keeps event time behind the clock. As fast as possible (`rate` 0, which needs a
    count) each sensor reads once a second and the last reading lies exactly at `now`."""
    fleet = fleet or SensorFleetConfig()
    if rate > 0:
        config = replace(fleet, interval=timedelta(seconds=fleet.sensors / rate))
        stream = generate_readings(seed=seed, start=now, config=config)
    elif count is None:
        raise ConfigurationError("as fast as possible (rate 0) needs a count of readings")
    else:
        config = replace(fleet, interval=AS_FAST_AS_POSSIBLE_INTERVAL)
        start = start_ending_at(
            lambda start: generate_readings(seed=seed, start=start, config=config),
            count=count,
            end=now,
            event_time=_reading_time,
        )
        stream = generate_readings(seed=seed, start=start, config=config)
    return stream if count is None else itertools.islice(stream, count)


def _reading_time(reading: Reading) -> datetime:
    return reading.timestamp


@dataclass(frozen=True, slots=True, kw_only=True)
class Simulation(Generic[T]):
    """What a producer needs to know of a domain generator with a daily cycle."""

    generate: Callable[[int, datetime, float, Lane], Iterator[Generated[T]]]
    """The stream of (seed, start, mean events per second of the whole stream, lane)."""
    cycle: DailyCycle
    unpaced_rate: float
    """Events per second of event time when produced as fast as possible."""
    events_per_arrival: float
    """Mean events that arrive together (a session's, a post's with its likes): how much
    the volume of a span varies, so how wide the layout's margin is."""
    warm_up: timedelta
    """How far a stream lags its mean rate at its start (sessions, likes and authorisations
    follow what started them): a cold stream needs this much longer for its volume."""


def planned_events(
    simulation: Simulation[T],
    *,
    seed: int,
    now: datetime,
    count: int | None,
    rate: float,
    lanes: Sequence[Lane] | None = None,
) -> Iterator[Generated[T]]:
    """The events of a producer run of `simulation`, to release with `released(…, start=now)`:
    its `lanes` (default: all `LANES`), each its `lane_count` of `count`, merged by event time.

    At a fixed `rate` (mean events per second over a day) the stream starts now. As fast as
    possible (`rate` 0, which needs a count) it runs at `unpaced_rate` and starts early
    enough for its first `count` events to lie before now: by the daily cycle's expected
    volume, plus a margin of eight standard deviations of a lane's volume and 5 %, plus the
    warm-up. The start depends on the whole run's count, never on the lanes asked for."""
    lanes = lanes_of(0, 1) if lanes is None else lanes
    if rate > 0:
        start = now
    elif count is None:
        raise ConfigurationError("as fast as possible (rate 0) needs a count of events")
    else:
        per, of = simulation.events_per_arrival, LANES
        most = -(-count // of)  # the most a lane generates
        events = of * (1.05 * most + 8.0 * math.sqrt(most * per) + 8.0 * per)
        span = simulation.cycle.span_before(now, events=events, rate=simulation.unpaced_rate)
        start, rate = now - span - simulation.warm_up, simulation.unpaced_rate
    streams = []
    for lane in lanes:
        stream = simulation.generate(seed, start, rate, lane)
        streams.append(
            stream if count is None else itertools.islice(stream, lane_count(count, lane))
        )
    return merged(streams)


def merged(streams: Sequence[Iterator[Generated[T]]]) -> Iterator[Generated[T]]:
    """Streams in non-decreasing event time (lanes) merged into one, ties in their order."""
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_generated_time)


def _generated_time(item: Generated[Any]) -> datetime:
    moment: datetime = item.event.timestamp
    return moment


async def released(
    events: Iterable[Generated[T]],
    *,
    timer: Timer,
    stop: asyncio.Event,
    event_time: Callable[[T], datetime],
    start: datetime | None,
) -> AsyncIterator[list[Generated[T]]]:
    """Yield `events`, in lists of those due together, until they end or `stop` is set.

    With a `start`, each event is held until the timer has run as long since the first event
    as the event's time lies past `start`: released up to `RESOLUTION_S` late, never early,
    so event time never runs ahead of a clock that read `start` when the run began. Without
    one, as fast as possible. A list holds the events released without a wait between them,
    at most `YIELD_EVERY`; other tasks get a turn after each full list."""
    origin = timer.monotonic()
    due: list[Generated[T]] = []
    # Events up to `due_until` were due at the timer's last reading: they need no new one
    # (as fast as possible, that is every event).
    due_until = start
    for item in events:
        if start is not None and due_until is not None:
            moment = event_time(item.event)
            if moment > due_until:
                elapsed = timer.monotonic() - origin
                due_until = start + timedelta(microseconds=int(elapsed * 1e6))  # rounded down
                ahead = (moment - start).total_seconds() - elapsed
                if ahead > 0:
                    if due:
                        yield due
                        due = []
                    if stop.is_set():
                        return
                    await timer.wait(max(ahead, RESOLUTION_S), stop)
                    elapsed = timer.monotonic() - origin
                    due_until = start + timedelta(microseconds=int(elapsed * 1e6))
        if stop.is_set():
            return
        due.append(item)
        if len(due) >= YIELD_EVERY:
            yield due
            due = []
            await timer.wait(0, stop)
    if due and not stop.is_set():
        yield due
