"""Publishing stored alerts to the alerts topic (a transactional outbox).

Alerts are written to the store in the same transaction as the readings that raised them;
the relay then publishes the unpublished ones and marks them. A crash between the publish and
the mark re-publishes those alerts on restart: consumers deduplicate by alert id (the key of
each alert is its source and its value carries the deterministic alert id)."""

from __future__ import annotations

from pipeline.application.ports import Codec, EventLog, SensorStore
from pipeline.domain import Alert


class AlertRelay:
    """Moves alerts from the store's outbox to the alerts topic."""

    def __init__(
        self, *, store: SensorStore, log: EventLog, codec: Codec[Alert], topic: str
    ) -> None:
        self._store = store
        self._log = log
        self._codec = codec
        self._topic = topic

    async def relay(self, limit: int = 1_000) -> int:
        """Publish every unpublished alert (in chunks of `limit`); return how many."""
        total = 0
        while True:
            alerts = await self._store.unpublished_alerts(limit)
            if not alerts:
                return total
            for alert in alerts:
                await self._log.publish(
                    self._topic, alert.source.encode(), await self._codec.encode(alert)
                )
            await self._log.flush()
            await self._store.mark_published([alert.alert_id for alert in alerts])
            total += len(alerts)
            if len(alerts) < limit:
                return total
