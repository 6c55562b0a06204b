"""Publishing stored alerts to the alerts topic (a transactional outbox).

Alerts are written to the store in the same transaction as the readings that raised them;
the relay then publishes the alerts a committed batch stored for the first time, as they
were written (not read back from the store), and marks them published. It also sweeps the
outbox — publishes every alert still unpublished there — on its first call, after a call
that failed, and at least every `sweep_every_s` (what a crash left between the commit and
the mark, in this worker or another one). A crash between the publish and the mark
re-publishes those alerts: consumers deduplicate by alert id (the key of each alert is its
source and its value carries the deterministic alert id).

Each chunk published is a span, `pipeline alert publish`: a child of the batch that stored the
alerts when a worker relays them after that batch."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

from pipeline.application.ports import Codec, EventLog, SensorStore
from pipeline.application.ports.telemetry import Telemetry
from pipeline.application.ports.tracing import Tracing
from pipeline.application.telemetry import NullTelemetry
from pipeline.application.tracing import NullTracing
from pipeline.domain import Alert


class AlertRelay:
    """Moves alerts from the store's outbox to the alerts topic."""

    def __init__(
        self,
        *,
        store: SensorStore,
        log: EventLog,
        codec: Codec[Alert],
        topic: str,
        telemetry: Telemetry | None = None,
        tracing: Tracing | None = None,
        sweep_every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._log = log
        self._codec = codec
        self._topic = topic
        self._telemetry = telemetry or NullTelemetry()
        self._tracing = tracing or NullTracing()
        self._sweep_every_s = sweep_every_s
        self._clock = clock
        self._swept_at: float | None = None
        """When the outbox was last swept whole; None: never, or a call failed since."""
        self._swept: set[uuid.UUID] = set()
        """The alerts the last sweep published: a batch committed just before it may hand
        them on after it, and they are not published twice for that."""

    def raised(self, job: str, events: Sequence[object]) -> None:
        """Count the alerts among `events` (what a batch stored for the first time)."""
        kinds = Counter(
            (e.domain, e.detector, e.kind, e.severity) for e in events if isinstance(e, Alert)
        )
        for (domain, detector, kind, severity), count in kinds.items():
            self._telemetry.alerts_raised(
                job=job,
                domain=domain,
                detector=detector,
                kind=kind,
                severity=severity,
                count=count,
            )

    async def relay(self, stored: Sequence[object] = (), limit: int = 1_000) -> int:
        """Publish the alerts among `stored` (what committed batches stored for the first
        time), then, when a sweep is due, every alert the outbox still holds unpublished, in
        chunks of `limit`; return how many. The backlog found first is reported (before a
        broker outage can stop the relay)."""
        backlog = await self._store.unpublished_alert_count() if self._telemetry.enabled else 0
        self._telemetry.outbox_backlog(backlog)
        swept_at, self._swept_at = self._swept_at, None  # a failure leaves the next a sweep
        fresh = [e for e in stored if isinstance(e, Alert) and e.alert_id not in self._swept]
        total = 0
        for start in range(0, len(fresh), limit):
            total += await self._publish(fresh[start : start + limit])
        now = self._clock()
        if swept_at is not None and now - swept_at < self._sweep_every_s:
            self._swept_at = swept_at
        else:
            total += await self._sweep(limit)
            self._swept_at = now
        self._telemetry.outbox_backlog(max(0, backlog - total))
        return total

    async def _sweep(self, limit: int) -> int:
        """Publish every alert the outbox holds unpublished."""
        swept: set[uuid.UUID] = set()
        while True:
            alerts = await self._store.unpublished_alerts(limit)
            await self._publish(alerts)
            swept.update(alert.alert_id for alert in alerts)
            if len(alerts) < limit:
                self._swept = swept
                return len(swept)

    async def _publish(self, alerts: Sequence[Alert]) -> int:
        """Publish `alerts` (one span), wait for the broker's acknowledgement, then mark
        them published."""
        if not alerts:
            return 0
        with self._tracing.span(
            "pipeline alert publish",
            {"messaging.destination.name": self._topic, "pipeline.alerts": len(alerts)},
        ):
            for alert in alerts:
                await self._log.publish(
                    self._topic, alert.source.encode(), await self._codec.encode(alert)
                )
            await self._log.flush()
        await self._store.mark_published([alert.alert_id for alert in alerts])
        return len(alerts)
