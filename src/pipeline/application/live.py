"""The live view's fan-out: one `LiveHub` per process hands every event to the subscribers
whose filter matches it, each through its own bounded queue.

Publishing never waits: when a subscriber's queue is full the event is dropped for that
subscriber alone and counted, so a slow client loses messages instead of slowing the feed
or the other clients. The subscriber learns how many it lost once it has drained its queue
(a `DroppedNotice`). Subscribers take their events in batches, and a `FanoutPacer` shares
the event loop between the senders of those batches and everything else the process serves.
Pure asyncio, no I/O: `pipeline.application.live_feed` feeds it."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pipeline.domain.alerts import Alert, AlertDomain
from pipeline.domain.errors import PipelineError
from pipeline.domain.sensors import DEFAULT_CATALOG, MAX_IDENTIFIER_LENGTH, Reading, SensorCatalog

MAX_FILTER_VALUES = 100
"""Most sensor types or sensor ids one filter may list."""
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class InvalidLiveFilter(PipelineError):
    """A live-view filter that cannot be applied (unknown sensor type, malformed id, …)."""

    error_class = "bad_filter"


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveReading:
    """A valid reading, as the sensors worker will process it."""

    reading: Reading


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveAlert:
    """An alert, as published to the alerts topic."""

    alert: Alert


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveStats:
    """Throughput of the feed; every subscriber gets these, whatever its filter."""

    readings_per_second: float
    lag: int | None
    """Records of the readings topic the sensors worker has not made durable (None: unknown)."""
    clients: int
    dropped: int
    """Events dropped for slow subscribers since the hub started, all subscribers together."""
    time: datetime


LiveEvent = LiveReading | LiveAlert | LiveStats


@dataclass(frozen=True, slots=True, kw_only=True)
class DroppedNotice:
    """Told to a subscriber whose queue overflowed, once it has caught up."""

    count: int
    """Events lost since the previous notice."""
    total: int
    """Events this subscriber lost since it subscribed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveFilter:
    """Which events a subscriber wants; None means any. Stats always pass."""

    sensor_types: frozenset[str] | None = None
    sensor_ids: frozenset[str] | None = None
    alerts_only: bool = False
    domains: frozenset[str] | None = None
    """Only events of these streams (`AlertDomain` values): an alert by its `domain`, a
    reading is the sensors stream's."""

    @property
    def passes_all(self) -> bool:
        """Whether every event passes (no filter at all)."""
        return (
            self.sensor_types is None
            and self.sensor_ids is None
            and not self.alerts_only
            and self.domains is None
        )

    def matches(self, event: LiveEvent) -> bool:
        """Whether `event` passes the filter."""
        if isinstance(event, LiveStats):
            return True
        sensor_type: str | None
        if isinstance(event, LiveReading):
            if self.alerts_only or (self.domains is not None and "sensors" not in self.domains):
                return False
            sensor_type, sensor_id = event.reading.sensor_type, event.reading.sensor_id
        else:
            if self.domains is not None and event.alert.domain.value not in self.domains:
                return False
            sensor_type, sensor_id = event.alert.sensor_type, event.alert.source
        return (self.sensor_types is None or sensor_type in self.sensor_types) and (
            self.sensor_ids is None or sensor_id in self.sensor_ids
        )


def parse_live_filter(
    *,
    sensor_types: object = None,
    sensor_ids: object = None,
    alerts_only: object = False,
    domains: object = None,
    catalog: SensorCatalog = DEFAULT_CATALOG,
) -> LiveFilter:
    """The filter given as plain values (lists of strings, a bool; None or an empty list means
    any); raise InvalidLiveFilter naming the bad field."""
    if not isinstance(alerts_only, bool):
        raise InvalidLiveFilter(f"alerts_only must be true or false, not {alerts_only!r}")
    types = _string_set("sensor_types", sensor_types)
    if types is not None:
        unknown = sorted(t for t in types if t not in catalog)
        if unknown:
            known = ", ".join(sorted(kind.name for kind in catalog))
            raise InvalidLiveFilter(
                f"sensor_types: unknown sensor type {unknown[0][:50]!r}; known types: {known}"
            )
    streams = _string_set("domains", domains)
    if streams is not None:
        known_streams = sorted(d.value for d in AlertDomain)
        unknown_streams = sorted(d for d in streams if d not in known_streams)
        if unknown_streams:
            raise InvalidLiveFilter(
                f"domains: unknown stream {unknown_streams[0][:50]!r}; known streams: "
                + ", ".join(known_streams)
            )
    return LiveFilter(
        sensor_types=types,
        sensor_ids=_string_set("sensor_ids", sensor_ids),
        alerts_only=alerts_only,
        domains=streams,
    )


def _string_set(name: str, values: object) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidLiveFilter(f"{name} must be a list of strings")
    items = list(values)
    if len(items) > MAX_FILTER_VALUES:
        raise InvalidLiveFilter(f"{name} lists {len(items)} values; at most {MAX_FILTER_VALUES}")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidLiveFilter(f"{name} must hold non-empty strings, not {item!r:.60}")
        if len(item) > MAX_IDENTIFIER_LENGTH:
            raise InvalidLiveFilter(
                f"{name}: a value is {len(item)} characters long; "
                f"at most {MAX_IDENTIFIER_LENGTH} are allowed"
            )
        if _CONTROL_CHARACTERS.search(item):
            raise InvalidLiveFilter(f"{name}: {item!r:.60} contains control characters")
    return frozenset(items) or None


class Subscription:
    """One subscriber's bounded queue of events and its drop count."""

    def __init__(self, live_filter: LiveFilter, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a subscription needs room for at least 1 event")
        self.filter = live_filter
        """Replace it to change what the subscriber gets from now on."""
        self._capacity = capacity
        self._items: deque[LiveEvent] = deque()
        self._ready = asyncio.Event()
        self._unannounced = 0
        self.dropped = 0
        """Events this subscriber lost since it subscribed."""
        self.closed = False

    def offer(self, events: Sequence[LiveEvent]) -> int:
        """Queue the events that match, as far as there is room; never waits. Return how
        many were queued (the others were dropped, or not wanted)."""
        if self.closed:
            return 0
        live_filter = self.filter
        wanted = events if live_filter.passes_all else [e for e in events if live_filter.matches(e)]
        room = self._capacity - len(self._items)
        queued = max(0, min(room, len(wanted)))
        if queued:
            # One extend per batch, not one call per event: the hub runs this for every
            # client and every batch the feed reads.
            self._items.extend(wanted if queued == len(wanted) else wanted[:queued])
            self._ready.set()
        if lost := len(wanted) - queued:
            # Drop the newest: what is queued stays in order, and the notice marks the gap.
            self._unannounced += lost
            self.dropped += lost
        return queued

    async def next_batch(self, limit: int) -> list[LiveEvent | DroppedNotice] | None:
        """Up to `limit` queued events, oldest first, waiting for the first; a DroppedNotice
        (in the batch's last place) once the queue is empty after losses; None when the
        subscription is closed. Safe to cancel (nothing is lost)."""
        while not self.closed:
            if self._items or self._unannounced:
                return self._take(max(1, limit))
            self._ready.clear()
            await self._ready.wait()
        return None

    def _take(self, limit: int) -> list[LiveEvent | DroppedNotice]:
        items = self._items
        batch: list[LiveEvent | DroppedNotice] = [
            items.popleft() for _ in range(min(limit, len(items)))
        ]
        if not items and self._unannounced and len(batch) < limit:
            count, self._unannounced = self._unannounced, 0
            batch.append(DroppedNotice(count=count, total=self.dropped))
        return batch

    def pending(self) -> int:
        """Events queued and not yet taken."""
        return len(self._items)

    def close(self) -> None:
        """Stop taking events; a waiting `next` returns None."""
        self.closed = True
        self._items.clear()
        self._ready.set()


class LiveHub:
    """Fans events out to subscribers; `publish` never waits (single event loop, no locks)."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.dropped = 0
        """Events dropped for slow subscribers since the hub started."""

    @property
    def clients(self) -> int:
        """Current subscribers."""
        return len(self._subscriptions)

    def subscribe(self, live_filter: LiveFilter, queue_size: int) -> Subscription:
        """A new subscriber getting the events matching `live_filter`, at most `queue_size`
        of them waiting at once."""
        subscription = Subscription(live_filter, queue_size)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to `subscription` (closing it); unknown ones are ignored."""
        self._subscriptions.discard(subscription)
        subscription.close()

    def publish(self, *events: LiveEvent) -> int:
        """Offer `events`, in order, to every subscriber; return how many deliveries were
        queued (events times the subscribers that queued them)."""
        if not events:
            return 0
        delivered = 0
        for subscription in self._subscriptions:
            before = subscription.dropped
            delivered += subscription.offer(events)
            self.dropped += subscription.dropped - before
        return delivered

    def close(self) -> None:
        """Close every subscription (the process is stopping)."""
        for subscription in list(self._subscriptions):
            self.unsubscribe(subscription)


class FanoutPacer:
    """Shares the event loop between the live view's senders and everything else the
    process serves (REST requests, health checks, the feed itself).

    Handing a frame to a socket rarely waits, so senders with full queues would run back to
    back without yielding: with hundreds of clients a health check waited seconds for its turn.
    Each sender instead asks for a turn before sending a batch: in one pass of the event loop
    all senders together get at most `frames_per_turn` frames; the others queue, first come
    first served, and go in later passes, with whatever else is ready running in between.
    When nothing else is ready the loop comes straight back to them, so an idle process still
    sends as fast as it can."""

    def __init__(self, frames_per_turn: int = 64) -> None:
        if frames_per_turn < 1:
            raise ValueError("a turn needs room for at least 1 frame")
        self.frames_per_turn = frames_per_turn
        self._left = frames_per_turn
        self._waiting: deque[tuple[asyncio.Future[None], int]] = deque()
        self._next_turn: asyncio.Handle | None = None

    async def turn(self, frames: int) -> None:
        """Wait until `frames` more frames (at most `frames_per_turn` are counted) may be
        sent in this pass of the event loop."""
        frames = max(1, min(frames, self.frames_per_turn))
        if not self._waiting and frames <= self._left:
            self._left -= frames
            self._schedule()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((waiter, frames))
        self._schedule()
        await waiter  # cancelled: its place is skipped

    def _schedule(self) -> None:
        # call_soon runs in the next pass of the loop, after what is ready now: the pass
        # boundary the budget is counted by.
        if self._next_turn is None:
            self._next_turn = asyncio.get_running_loop().call_soon(self._start_turn)

    def _start_turn(self) -> None:
        self._next_turn = None
        self._left = self.frames_per_turn
        waiting = self._waiting
        while waiting:
            waiter, frames = waiting[0]
            if waiter.done():  # its sender was cancelled while waiting
                waiting.popleft()
                continue
            if frames > self._left:
                break
            waiting.popleft()
            self._left -= frames
            waiter.set_result(None)
        if waiting:
            self._schedule()
