"""Publishing stored alerts to the alerts topic (a transactional outbox).

Alerts are written to the store in the same transaction as the readings that raised them;
the relay then publishes the unpublished ones and marks them. A crash between the publish and
the mark re-publishes those alerts on restart: consumers deduplicate by alert id (the key of
each alert is its source and its value carries the deterministic alert id).

Each chunk published is a span, `pipeline alert publish`: a child of the batch that stored the
alerts when a worker relays them after that batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

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
    ) -> None:
        self._store = store
        self._log = log
        self._codec = codec
        self._topic = topic
        self._telemetry = telemetry or NullTelemetry()
        self._tracing = tracing or NullTracing()

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

    async def relay(self, limit: int = 1_000) -> int:
        """Publish every unpublished alert (in chunks of `limit`); return how many. The
        backlog found first is reported (before a broker outage can stop the relay)."""
        backlog = await self._store.unpublished_alert_count() if self._telemetry.enabled else 0
        self._telemetry.outbox_backlog(backlog)
        total = 0
        while True:
            alerts = await self._store.unpublished_alerts(limit)
            if not alerts:
                self._telemetry.outbox_backlog(max(0, backlog - total))
                return total
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
            total += len(alerts)
            if len(alerts) < limit:
                self._telemetry.outbox_backlog(max(0, backlog - total))
                return total
