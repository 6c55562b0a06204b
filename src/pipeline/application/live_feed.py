"""`LiveFeed`: the one event-log reader per process behind the live view.

It reads the readings and alerts topics from their ends (a live view, not history; it never
commits), decodes and validates the readings as the sensors worker would (invalid ones are
skipped here: the worker dead-letters them), and publishes readings, alerts and, every
second, throughput stats to a `LiveHub`. It runs while there are subscribers: the first one
starts it, and it stops after `idle_timeout` seconds without any. Broker, registry and store
failures are logged and retried with backoff; they never end the feed."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog

from pipeline.application.errors import DecodeError
from pipeline.application.lag import OffsetStore, consumer_lag
from pipeline.application.live import (
    LiveAlert,
    LiveEvent,
    LiveFilter,
    LiveHub,
    LiveReading,
    LiveStats,
    Subscription,
)
from pipeline.application.ports import (
    Clock,
    Codec,
    EventConsumer,
    EventLog,
    Record,
    TopicPartition,
)
from pipeline.domain.alerts import Alert
from pipeline.domain.errors import DomainError
from pipeline.domain.sensors import (
    DEFAULT_CATALOG,
    DEFAULT_MAX_CLOCK_SKEW,
    Reading,
    SensorCatalog,
    validate_reading,
)

log = structlog.get_logger(__name__)


class LiveFeed:
    """Reads the readings and alerts topics once per process and fans them out via `hub`."""

    def __init__(
        self,
        *,
        log: EventLog,
        store: OffsetStore,
        clock: Clock,
        reading_codec: Codec[Reading],
        alert_codec: Codec[Alert],
        readings_topic: str,
        alerts_topic: str,
        lag_group: str,
        reader_group_prefix: str,
        hub: LiveHub | None = None,
        catalog: SensorCatalog = DEFAULT_CATALOG,
        max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
        batch_size: int = 1_000,
        poll_timeout: float = 0.25,
        stats_interval: float = 1.0,
        lag_interval: float = 2.0,
        idle_timeout: float = 30.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.hub = hub if hub is not None else LiveHub()
        self._log = log
        self._store = store
        self._clock = clock
        self._reading_codec = reading_codec
        self._alert_codec = alert_codec
        self._readings_topic = readings_topic
        self._alerts_topic = alerts_topic
        self._lag_group = lag_group
        self._reader_group_prefix = reader_group_prefix
        self._catalog = catalog
        self._max_clock_skew = max_clock_skew
        self._batch_size = batch_size
        self._poll_timeout = poll_timeout
        self._stats_interval = stats_interval
        self._lag_interval = lag_interval
        self._idle_timeout = idle_timeout
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.readers_opened = 0
        """Readers opened since the feed was made (one per run, plus one per recovery)."""
        self.reading = asyncio.Event()
        """Set while a reader is open: records published from then on reach subscribers."""

    @property
    def running(self) -> bool:
        """Whether the reading task is alive."""
        return self._task is not None and not self._task.done()

    def now(self) -> datetime:
        """The feed's clock time (what stats and heartbeats are stamped with)."""
        return self._clock.now()

    def subscribe(self, live_filter: LiveFilter, queue_size: int) -> Subscription:
        """Subscribe to the hub, starting the feed if it is not running."""
        subscription = self.hub.subscribe(live_filter, queue_size)
        if self._closed:
            self.hub.unsubscribe(subscription)  # it ends at once: the process is stopping
        elif not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-feed")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Unsubscribe from the hub (the feed stops once idle long enough)."""
        self.hub.unsubscribe(subscription)

    async def aclose(self) -> None:
        """Close every subscription, stop reading and close the reader. Safe to call twice."""
        self._closed = True
        self.hub.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        run = _FeedRun(self)
        try:
            await run.loop()
        finally:
            await run.stop_lag()
            await run.close_reader()
            # A subscriber may have arrived while the reader closed: it needs a feed.
            if not self._closed and self.hub.clients and self._task is asyncio.current_task():
                self._task = asyncio.get_running_loop().create_task(self._run(), name="live-feed")


class _FeedRun:
    """The state of one run of the feed, from its first subscriber until it idles out."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed
        self.reader: EventConsumer | None = None
        self.with_alerts = False
        now = time.monotonic()
        self.window_start = now
        self.window_readings = 0
        self.next_stats = now + feed._stats_interval
        self.next_lag = now
        self.lag: int | None = None
        self.lag_task: asyncio.Task[None] | None = None
        self.idle_since: float | None = None

    async def loop(self) -> None:
        feed = self.feed
        backoff = 0.1
        while True:
            now = time.monotonic()
            if feed.hub.clients:
                self.idle_since = None
            elif self.idle_since is None:
                self.idle_since = now
            elif now - self.idle_since >= feed._idle_timeout:
                return
            try:
                await self.step()
                backoff = 0.1
            except Exception as error:  # noqa: BLE001 - any failure: log, back off, go on
                log.warning("live feed failed; retrying", error=repr(error), backoff=backoff)
                await self.close_reader()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, feed._max_backoff)

    async def step(self) -> None:
        """Open the reader if needed, poll once, publish what came, and stats when due."""
        feed = self.feed
        if self.reader is None:
            self.reader = await self.open_reader()
        if self.reader is None:
            # The topics do not exist yet: wait for them, still telling clients so.
            await asyncio.sleep(feed._poll_timeout)
        else:
            records = await self.reader.poll(feed._batch_size, feed._poll_timeout)
            if records:
                await self.publish(records)
        await self.maybe_stats()

    async def open_reader(self) -> EventConsumer | None:
        """A reader at the end of the readings topic (and the alerts topic if it exists);
        None while the readings topic does not exist."""
        feed = self.feed
        start: dict[TopicPartition, int] = {}
        ends = await feed._log.end_offsets(feed._readings_topic)
        if not ends:
            return None
        start.update({TopicPartition(feed._readings_topic, p): end for p, end in ends.items()})
        alert_ends = await feed._log.end_offsets(feed._alerts_topic)
        start.update({TopicPartition(feed._alerts_topic, p): end for p, end in alert_ends.items()})
        self.with_alerts = bool(alert_ends)
        group = f"{feed._reader_group_prefix}-live-{uuid.uuid4().hex[:12]}"
        reader = feed._log.reader(group_id=group, start=start)
        feed.readers_opened += 1
        feed.reading.set()
        log.info("live feed reading", group=group, partitions=len(start))
        return reader

    async def stop_lag(self) -> None:
        task, self.lag_task = self.lag_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close_reader(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            self.feed.reading.clear()
            try:
                # Bounded: a reader that cannot leave must not keep the feed from recovering.
                await asyncio.wait_for(reader.close(), timeout=10)
            except Exception as error:  # noqa: BLE001 - closing is best effort
                log.warning("live feed reader did not close cleanly", error=repr(error))

    async def publish(self, records: Sequence[Record]) -> None:
        feed = self.feed
        readings = [r.value for r in records if r.topic == feed._readings_topic]
        alerts = [r.value for r in records if r.topic == feed._alerts_topic]
        events: list[LiveEvent] = []
        if readings:
            now = feed._clock.now()
            for decoded in await feed._reading_codec.decode_many(readings):
                if isinstance(decoded, DecodeError):
                    continue
                try:
                    reading = validate_reading(
                        decoded, now=now, catalog=feed._catalog, max_clock_skew=feed._max_clock_skew
                    )
                except DomainError:
                    continue
                events.append(LiveReading(reading=reading))
            self.window_readings += len(events)
        if alerts:
            events += [
                LiveAlert(alert=alert)
                for alert in await feed._alert_codec.decode_many(alerts)
                if not isinstance(alert, DecodeError)
            ]
        # The whole poll at once: one pass over the subscribers per batch, not per event.
        feed.hub.publish(*events)

    async def maybe_stats(self) -> None:
        """Publish stats once per interval; refresh the lag (and look for a late alerts
        topic) every lag interval."""
        feed = self.feed
        now = time.monotonic()
        if now < self.next_stats:
            return
        if now >= self.next_lag and (self.lag_task is None or self.lag_task.done()):
            self.next_lag = now + feed._lag_interval
            # In the background: a slow or unreachable database must not slow the feed.
            self.lag_task = asyncio.get_running_loop().create_task(self.refresh_lag())
            if (
                self.reader is not None
                and not self.with_alerts
                and await feed._log.end_offsets(feed._alerts_topic)
            ):
                await self.close_reader()  # reopened with the alerts topic next step
        elapsed = now - self.window_start
        rate = self.window_readings / elapsed if elapsed > 0 else 0.0
        self.window_start, self.window_readings = now, 0
        self.next_stats = now + feed._stats_interval
        hub = feed.hub
        hub.publish(
            LiveStats(
                readings_per_second=round(rate, 1),
                lag=self.lag,
                clients=hub.clients,
                dropped=hub.dropped,
                time=feed._clock.now(),
            )
        )

    async def refresh_lag(self) -> None:
        feed = self.feed
        try:
            self.lag = await asyncio.wait_for(
                consumer_lag(feed._log, feed._store, feed._readings_topic, feed._lag_group),
                timeout=feed._lag_interval,
            )
        except Exception as error:  # noqa: BLE001 - unknown lag is shown as null
            log.debug("live feed cannot read the lag", error=repr(error))
            self.lag = None
