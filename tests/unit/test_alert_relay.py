"""The alert outbox relay: it publishes the alerts committed batches hand it as they were
stored, without reading them back, and sweeps the outbox for what a crash or a failed call
left — on its first call, after a failure and every `sweep_every_s` — publishing each alert
at least once and, while nothing fails, once."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.adapters.avro import alert_codec
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.alerts import AlertRelay
from pipeline.application.errors import BrokerUnavailable
from pipeline.application.ports import Codec, TopicPartition, TopicSpec
from pipeline.domain.alerts import DEFAULT_THRESHOLDS, Alert, check_thresholds
from tests.api.conftest import reading
from tests.projection import writes_for
from tests.unit.test_prometheus_telemetry import OutageLog

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TOPIC = "alerts"


class Outbox(InMemorySensorStore):
    """The in-memory store, counting how many alerts were read back from its outbox."""

    read_back = 0

    async def unpublished_alerts(self, limit: int) -> list[Alert]:
        alerts = await super().unpublished_alerts(limit)
        self.read_back += len(alerts)
        return alerts


class Clock:
    """Monotonic seconds, moved by hand."""

    now = 0.0

    def __call__(self) -> float:
        return self.now


async def stored_alerts(store: InMemorySensorStore, first: int, count: int) -> list[Alert]:
    """`count` threshold alerts of sensors `first`…, stored with their readings (committed,
    not yet published)."""
    readings = [
        reading(T0 + timedelta(seconds=i), sensor=f"t-{i}", value=80.0)
        for i in range(first, first + count)
    ]
    alerts = [a for r in readings if (a := check_thresholds(r, DEFAULT_THRESHOLDS))]
    await writes_for(store).readings(readings, alerts=alerts)
    return alerts


async def relay_on(
    log: InMemoryEventLog, store: InMemorySensorStore, clock: Clock
) -> tuple[AlertRelay, Codec[Alert]]:
    await log.ensure_topics([TopicSpec(name=TOPIC, partitions=1)])
    codec = alert_codec(InMemorySchemaRegistry(), TOPIC)
    relay = AlertRelay(
        store=store, log=log, codec=codec, topic=TOPIC, sweep_every_s=5.0, clock=clock
    )
    return relay, codec


async def on_topic(log: InMemoryEventLog, codec: Codec[Alert]) -> list[Alert]:
    """Every alert on the topic, in order."""
    reader = log.reader(group_id="inspect", start={TopicPartition(TOPIC, 0): 0})
    records = await reader.poll(10_000, 0.0)
    await reader.close()
    return [a for a in await codec.decode_many([r.value for r in records]) if isinstance(a, Alert)]


async def published(log: InMemoryEventLog, codec: Codec[Alert]) -> Counter[uuid.UUID]:
    """The ids of the alerts on the topic, with how many times each is there."""
    return Counter(a.alert_id for a in await on_topic(log, codec))


def ids(*alerts: list[Alert]) -> Counter[uuid.UUID]:
    return Counter(a.alert_id for batch in alerts for a in batch)


async def test_alerts_handed_on_are_published_as_stored_without_reading_them_back() -> None:
    store, log, clock = Outbox(), InMemoryEventLog(), Clock()
    relay, codec = await relay_on(log, store, clock)
    await relay.relay(())  # the worker's first call: the outbox is empty
    batch = await stored_alerts(store, 0, 3)

    sent = await relay.relay(batch)

    assert sent == 3
    assert await on_topic(log, codec) == batch
    assert store.read_back == 0
    assert await store.unpublished_alerts(10) == []


async def test_what_a_crash_left_in_the_outbox_is_published_by_the_first_call() -> None:
    store, log, clock = Outbox(), InMemoryEventLog(), Clock()
    left = await stored_alerts(store, 0, 2)  # committed, then the worker died
    relay, codec = await relay_on(log, store, clock)

    await relay.relay(())

    assert await published(log, codec) == ids(left)
    assert await store.unpublished_alerts(10) == []


async def test_after_a_failed_call_the_next_one_publishes_what_it_left() -> None:
    store, log, clock = Outbox(), OutageLog(), Clock()
    relay, codec = await relay_on(log, store, clock)
    await relay.relay(())
    first = await stored_alerts(store, 0, 2)
    log.down = True
    with pytest.raises(BrokerUnavailable):
        await relay.relay(first)
    log.down = False
    second = await stored_alerts(store, 10, 2)

    await relay.relay(second)

    assert set(await published(log, codec)) == set(ids(first, second))
    assert await store.unpublished_alerts(10) == []


async def test_what_another_worker_left_is_swept_once_the_interval_has_passed() -> None:
    store, log, clock = Outbox(), InMemoryEventLog(), Clock()
    relay, codec = await relay_on(log, store, clock)
    await relay.relay(())
    orphans = await stored_alerts(store, 0, 2)  # stored by a worker that died
    mine = await stored_alerts(store, 10, 1)

    await relay.relay(mine)
    before = set(await published(log, codec))
    clock.now += 5.0
    await relay.relay(await stored_alerts(store, 20, 1))

    assert before == set(ids(mine))
    assert set(ids(orphans)) <= set(await published(log, codec))
    assert await store.unpublished_alerts(10) == []


async def test_an_alert_swept_before_its_batch_hands_it_on_is_published_once() -> None:
    store, log, clock = Outbox(), InMemoryEventLog(), Clock()
    relay, codec = await relay_on(log, store, clock)
    batch = await stored_alerts(store, 0, 2)  # committed while the first call sweeps

    await relay.relay(())
    await relay.relay(batch)

    assert await published(log, codec) == ids(batch)
