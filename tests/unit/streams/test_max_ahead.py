"""`Job(max_ahead=…)`: a record stamped far in the future (a producer's broken clock) does not
move its partition's stream time, so the records after it are not made late; it still flows
to the validation that rejects it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.streams import Count, Job, Sink, Tumbling
from pipeline.streams.testing import TestDriver
from tests.unit.runtime.jobs import Tick

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


class FromTheFuture(ValueError):
    rule = "event_time_in_future"


def counting(max_ahead: timedelta | None) -> Job:
    """Ticks not past the wall clock by more than a minute, counted per key and minute."""
    job = Job("ticks", max_ahead=max_ahead)

    def not_in_future(tick: Tick, now: datetime) -> None:
        if tick.at > now + timedelta(minutes=1):
            raise FromTheFuture(f"tick at {tick.at} is past {now}")

    ticks = job.source("ticks", Tick, key=lambda t: t.key, event_time=lambda t: t.at)
    valid = ticks.validate(not_in_future, rejects=(FromTheFuture,), wall_clock=True)
    valid.window(
        Tumbling(size=timedelta(minutes=1), grace=timedelta(0)), step="per-minute"
    ).aggregate(Count()).final().to(Sink("counts", object))
    return job


def run(max_ahead: timedelta | None) -> TestDriver:
    driver = TestDriver(counting(max_ahead), now=T0 + timedelta(seconds=30))
    driver.send("ticks", Tick("a", T0, 1))
    driver.send("ticks", Tick("a", T0 + timedelta(days=3), 2))  # a broken clock
    driver.send("ticks", Tick("a", T0 + timedelta(seconds=10), 3))
    driver.send("ticks", Tick("a", T0 + timedelta(seconds=20), 4))
    driver.run()
    return driver


def test_a_record_from_the_far_future_does_not_make_the_next_ones_late() -> None:
    driver = run(max_ahead=timedelta(minutes=1))

    assert [r.rule for r in driver.rejections] == ["event_time_in_future"]
    assert driver.late == []
    driver.send("ticks", Tick("a", T0 + timedelta(minutes=1, seconds=5), 5))
    driver.run()
    [window] = driver.results("counts")
    assert window.value == 3  # the three genuine ticks of minute 0


def test_without_max_ahead_that_record_moves_stream_time_and_the_next_ones_are_late() -> None:
    driver = run(max_ahead=None)

    assert [r.rule for r in driver.rejections] == ["event_time_in_future"]
    assert len(driver.late) == 2
