"""The live view's hub: filters, bounded queues that drop (and say so) instead of waiting,
and subscribers that come and go."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime

import pytest

from pipeline.application.live import (
    MAX_FILTER_VALUES,
    DroppedNotice,
    FanoutPacer,
    InvalidLiveFilter,
    LiveAlert,
    LiveEvent,
    LiveFilter,
    LiveHub,
    LiveReading,
    LiveStats,
    Subscription,
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


async def next_event(sub: Subscription) -> LiveEvent | DroppedNotice | None:
    """The subscription's next event (None once it is closed)."""
    batch = await sub.next_batch(1)
    if batch is None:
        return None
    [event] = batch
    return event


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

    def test_domains_pass_that_streams_alerts_and_readings_only_for_sensors(self) -> None:
        social = LiveFilter(domains=frozenset({"social"}))
        sensors = LiveFilter(domains=frozenset({"sensors"}))

        assert not social.matches(live_reading())
        assert not social.matches(live_alert())
        assert sensors.matches(live_reading())
        assert sensors.matches(live_alert())
        assert social.matches(stats())

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
            ({"domains": ["weather"]}, "unknown stream"),
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

        assert [await next_event(sub), await next_event(sub)] == [first, second]
        assert sub.pending() == 0

    async def test_a_full_queue_drops_counts_and_announces_once_drained(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=2)
        events = [live_reading(f"s{i}") for i in range(5)]

        delivered = [hub.publish(event) for event in events]

        assert delivered == [1, 1, 0, 0, 0]
        assert [await next_event(sub), await next_event(sub)] == events[:2]
        assert await next_event(sub) == DroppedNotice(count=3, total=3)
        assert sub.dropped == 3
        assert hub.dropped == 3

    async def test_the_notice_counts_only_losses_since_the_previous_one(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=1)
        hub.publish(live_reading())
        hub.publish(live_reading())  # dropped
        await next_event(sub)
        await next_event(sub)  # the first notice
        hub.publish(live_reading())
        hub.publish(live_reading())  # dropped
        hub.publish(live_reading())  # dropped

        await next_event(sub)

        assert await next_event(sub) == DroppedNotice(count=2, total=3)

    async def test_a_slow_subscriber_does_not_hold_back_a_fast_one(self) -> None:
        hub = LiveHub()
        slow = hub.subscribe(LiveFilter(), queue_size=1)
        fast = hub.subscribe(LiveFilter(), queue_size=100)
        events = [live_reading(f"s{i}") for i in range(50)]

        # publish is synchronous: it cannot wait for the slow subscriber.
        for event in events:
            hub.publish(event)

        assert [await next_event(fast) for _ in events] == events
        assert slow.pending() == 1
        assert slow.dropped == 49
        assert fast.dropped == 0

    async def test_next_waits_for_a_publish(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=10)
        waiting = asyncio.create_task(next_event(sub))
        await asyncio.sleep(0)
        event = live_alert()

        hub.publish(event)

        assert await asyncio.wait_for(waiting, 1) == event

    async def test_cancelling_next_loses_nothing(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=10)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(next_event(sub), 0.01)
        event = live_reading()

        hub.publish(event)

        assert await next_event(sub) == event

    async def test_an_unsubscribed_subscriber_gets_nothing_more_and_its_wait_ends(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=10)
        waiting = asyncio.create_task(next_event(sub))
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

        assert await next_event(sub) == later

    async def test_closing_the_hub_ends_every_subscription(self) -> None:
        hub = LiveHub()
        subs = [hub.subscribe(LiveFilter(), queue_size=10) for _ in range(3)]
        hub.publish(live_reading())

        hub.close()

        assert [await next_event(sub) for sub in subs] == [None, None, None]
        assert hub.clients == 0

    async def test_a_batch_takes_the_oldest_events_up_to_its_limit(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=10)
        events = [live_reading(f"s{i}") for i in range(5)]
        for event in events:
            hub.publish(event)

        assert await sub.next_batch(3) == events[:3]
        assert await sub.next_batch(3) == events[3:]

    async def test_a_batch_that_drains_the_queue_ends_with_the_drop_notice(self) -> None:
        hub = LiveHub()
        sub = hub.subscribe(LiveFilter(), queue_size=2)
        events = [live_reading(f"s{i}") for i in range(4)]
        for event in events:
            hub.publish(event)

        assert await sub.next_batch(10) == [*events[:2], DroppedNotice(count=2, total=2)]

    def test_counts_its_clients(self) -> None:
        hub = LiveHub()
        first = hub.subscribe(LiveFilter(), queue_size=1)
        hub.subscribe(LiveFilter(), queue_size=1)

        hub.unsubscribe(first)

        assert hub.clients == 1

    def test_a_queue_needs_room_for_one_event(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            LiveHub().subscribe(LiveFilter(), queue_size=0)


class TestFanoutPacer:
    """Senders whose socket never makes them wait would hold the event loop; the pacer
    lets at most `frames_per_turn` frames go per pass of the loop, in arrival order."""

    @staticmethod
    async def sender(pacer: FanoutPacer, name: str, batches: int, sent: list[str]) -> None:
        for _ in range(batches):
            await pacer.turn(4)
            sent.extend([name] * 4)  # a send that never waits, like a socket with room

    async def test_other_work_runs_between_turns_while_senders_are_busy(self) -> None:
        pacer = FanoutPacer(frames_per_turn=8)
        sent: list[str] = []
        sent_at_each_pass: list[int] = []

        async def other_work() -> None:  # e.g. a health check, one step per pass of the loop
            for _ in range(5):
                await asyncio.sleep(0)
                sent_at_each_pass.append(len(sent))

        senders = [
            asyncio.create_task(self.sender(pacer, name, batches=25, sent=sent)) for name in "abc"
        ]
        await other_work()
        await asyncio.gather(*senders)

        assert len(sent) == 300  # everything is sent in the end
        steps = [b - a for a, b in itertools.pairwise([0, *sent_at_each_pass])]
        assert max(steps) <= 2 * pacer.frames_per_turn, steps
        assert sent_at_each_pass[-1] < len(sent)  # the health check did not wait for them all

    async def test_waiting_senders_go_in_the_order_they_asked_one_pass_each(self) -> None:
        pacer = FanoutPacer(frames_per_turn=4)
        order: list[tuple[str, int]] = []
        passes = 0

        async def count_passes() -> None:
            nonlocal passes
            while len(order) < 3:
                await asyncio.sleep(0)
                passes += 1

        async def ask(name: str) -> None:
            await pacer.turn(4)
            order.append((name, passes))

        await pacer.turn(4)  # this pass is used up: everyone below waits
        counter = asyncio.create_task(count_passes())
        await asyncio.gather(ask("a"), ask("b"), ask("c"))
        await counter

        names = [name for name, _ in order]
        at_pass = [at for _, at in order]
        assert names == ["a", "b", "c"]
        assert at_pass == sorted(set(at_pass))  # a pass each: the budget holds one batch

    async def test_a_sender_cancelled_while_waiting_gives_its_place_up(self) -> None:
        pacer = FanoutPacer(frames_per_turn=4)
        first = asyncio.create_task(pacer.turn(4))
        second = asyncio.create_task(pacer.turn(4))
        await asyncio.sleep(0)  # first took the pass's budget; second waits in line
        assert first.done()
        assert not second.done()

        second.cancel()

        await asyncio.wait_for(pacer.turn(4), 1)  # the next in line is not held up
        assert second.cancelled()

    async def test_without_competition_turns_are_granted_at_once(self) -> None:
        pacer = FanoutPacer(frames_per_turn=8)
        # Within the budget of a pass: no wait at all (the coroutine never suspends).
        step = pacer.turn(8).__await__()
        with pytest.raises(StopIteration):
            step.send(None)

    def test_a_turn_needs_room_for_one_frame(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            FanoutPacer(frames_per_turn=0)
