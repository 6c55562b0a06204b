"""The live view's hub: filters, bounded queues that drop (and say so) instead of waiting,
and subscribers that come and go."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from pipeline.application.live import (
    MAX_FILTER_VALUES,
    DroppedNotice,
    InvalidLiveFilter,
    LiveAlert,
    LiveFilter,
    LiveHub,
    LiveReading,
    LiveStats,
    parse_live_filter,
)
from pipeline.domain.alerts import Alert, AlertKind, Severity
from pipeline.domain.sensors import Reading

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def live_reading(sensor: str = "temp-1", sensor_type: str = "temperature") -> LiveReading:
    unit = {"temperature": "celsius", "humidity": "percent"}[sensor_type]
    return LiveReading(
        reading=Reading(
            sensor_id=sensor,
            sensor_type=sensor_type,
            value=20.0,
            unit=unit,
            timestamp=NOW,
            location="lab",
        )
    )


def live_alert(sensor: str = "temp-1", sensor_type: str | None = "temperature") -> LiveAlert:
    return LiveAlert(
        alert=Alert(
            alert_id=uuid.uuid4(),
            source=sensor,
            kind=AlertKind.THRESHOLD_HIGH,
            severity=Severity.WARNING,
            message="hot",
            timestamp=NOW,
            sensor_type=sensor_type,
            value=50.0,
            threshold=45.0,
        )
    )


def stats() -> LiveStats:
    return LiveStats(readings_per_second=1.0, lag=0, clients=1, dropped=0, time=NOW)


class TestFilter:
    def test_no_filter_passes_everything(self) -> None:
        live_filter = LiveFilter()

        assert live_filter.matches(live_reading())
        assert live_filter.matches(live_alert())
        assert live_filter.matches(stats())

    def test_sensor_types_pass_readings_and_alerts_of_those_types(self) -> None:
        live_filter = LiveFilter(sensor_types=frozenset({"humidity"}))

        assert live_filter.matches(live_reading("hum-1", "humidity"))
        assert not live_filter.matches(live_reading("temp-1", "temperature"))
        assert live_filter.matches(live_alert("hum-1", "humidity"))
        assert not live_filter.matches(live_alert("x", None))

    def test_sensor_ids_match_the_reading_sensor_and_the_alert_source(self) -> None:
        live_filter = LiveFilter(sensor_ids=frozenset({"temp-7"}))

        assert live_filter.matches(live_reading("temp-7"))
        assert not live_filter.matches(live_reading("temp-8"))
        assert live_filter.matches(live_alert("temp-7"))
        assert not live_filter.matches(live_alert("temp-8"))

    def test_alerts_only_drops_readings_but_not_alerts_or_stats(self) -> None:
        live_filter = LiveFilter(alerts_only=True)

        assert not live_filter.matches(live_reading())
        assert live_filter.matches(live_alert())
        assert live_filter.matches(stats())

    def test_stats_pass_any_filter(self) -> None:
        live_filter = LiveFilter(sensor_types=frozenset({"humidity"}), sensor_ids=frozenset({"x"}))

        assert live_filter.matches(stats())


class TestParseFilter:
    def test_lists_become_sets_and_empty_lists_mean_any(self) -> None:
        parsed = parse_live_filter(
            sensor_types=["humidity", "humidity"], sensor_ids=[], alerts_only=True
        )

        assert parsed == LiveFilter(
            sensor_types=frozenset({"humidity"}), sensor_ids=None, alerts_only=True
        )

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            ({"sensor_types": ["plasma"]}, "unknown sensor type"),
            ({"sensor_types": "temperature"}, "list of strings"),
            ({"sensor_ids": [1]}, "non-empty strings"),
            ({"sensor_ids": [" "]}, "non-empty strings"),
            ({"sensor_ids": ["x" * 201]}, "at most 200"),
            ({"sensor_ids": ["a\x00b"]}, "control characters"),
            ({"sensor_ids": [str(i) for i in range(MAX_FILTER_VALUES + 1)]}, "at most"),
            ({"alerts_only": "true"}, "alerts_only"),
            ({"alerts_only": None}, "alerts_only"),
        ],
    )
    def test_bad_input_is_refused_with_a_reason(
        self, fields: dict[str, object], named: str
    ) -> None:
        with pytest.raises(InvalidLiveFilter, match=named):
            parse_live_filter(**fields)  # type: ignore[arg-type]


class TestHub:
    async def test_a_subscriber_gets_the_events_its_filter_matches_in_order(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(sensor_ids=frozenset({"a"})), queue_size=10)
        first, other, second = live_reading("a"), live_reading("b"), live_alert("a")

        for event in (first, other, second):
            hub.publish(event)

        assert [await sub.next(), await sub.next()] == [first, second]
        assert sub.pending() == 0

    async def test_a_full_queue_drops_counts_and_announces_once_drained(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=2)
        events = [live_reading(f"s{i}") for i in range(5)]

        delivered = [hub.publish(event) for event in events]

        assert delivered == [1, 1, 0, 0, 0]
        assert [await sub.next(), await sub.next()] == events[:2]
        assert await sub.next() == DroppedNotice(count=3, total=3)
        assert sub.dropped == 3
        assert hub.dropped == 3

    async def test_the_notice_counts_only_losses_since_the_previous_one(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=1)
        hub.publish(live_reading())
        hub.publish(live_reading())  # dropped
        await sub.next()
        await sub.next()  # the first notice
        hub.publish(live_reading())
        hub.publish(live_reading())  # dropped
        hub.publish(live_reading())  # dropped

        await sub.next()

        assert await sub.next() == DroppedNotice(count=2, total=3)

    async def test_a_slow_subscriber_does_not_hold_back_a_fast_one(self) -> None:
        hub = LiveHub()
        slow = hub.subscribe(LiveFilter(), queue_size=1)
        fast = hub.subscribe(LiveFilter(), queue_size=100)
        events = [live_reading(f"s{i}") for i in range(50)]

        # publish is synchronous: it cannot wait for the slow subscriber.
        for event in events:
            hub.publish(event)

        assert [await fast.next() for _ in events] == events
        assert slow.pending() == 1
        assert slow.dropped == 49
        assert fast.dropped == 0

    async def test_next_waits_for_a_publish(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=10)
        waiting = asyncio.create_task(sub.next())
        await asyncio.sleep(0)
        event = live_alert()

        hub.publish(event)

        assert await asyncio.wait_for(waiting, 1) == event

    async def test_cancelling_next_loses_nothing(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=10)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sub.next(), 0.01)
        event = live_reading()

        hub.publish(event)

        assert await sub.next() == event

    async def test_an_unsubscribed_subscriber_gets_nothing_more_and_its_wait_ends(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=10)
        waiting = asyncio.create_task(sub.next())
        await asyncio.sleep(0)

        hub.unsubscribe(sub)

        assert await asyncio.wait_for(waiting, 1) is None
        assert hub.publish(live_reading()) == 0
        assert hub.clients == 0

    async def test_changing_the_filter_applies_to_later_events(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(alerts_only=True), queue_size=10)
        hub.publish(live_reading("before"))

        sub.filter = LiveFilter()
        later = live_reading("after")
        hub.publish(later)

        assert await sub.next() == later

    async def test_closing_the_hub_ends_every_subscription(self) -> None:
        hub = LiveHub()
        subs = [hub.subscribe(LiveFilter(), queue_size=10) for _ in range(3)]
        hub.publish(live_reading())

        hub.close()

        assert [await sub.next() for sub in subs] == [None, None, None]
        assert hub.clients == 0

    def test_counts_its_clients(self) -> None:
        hub = LiveHub()
        first = hub.subscribe(LiveFilter(), queue_size=1)
        hub.subscribe(LiveFilter(), queue_size=1)

        hub.unsubscribe(first)

        assert hub.clients == 1

    def test_a_queue_needs_room_for_one_event(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            LiveHub().subscribe(LiveFilter(), queue_size=0)
