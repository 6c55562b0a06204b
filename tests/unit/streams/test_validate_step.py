"""The validate step: a rule that depends on the time is given the batch's wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.streams import Job, Sink
from pipeline.streams.testing import TestDriver
from tests.unit.runtime.jobs import Tick

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


class FromTheFuture(ValueError):
    rule = "event_time_in_future"


def no_future_ticks(seen: list[datetime]) -> Job:
    """Ticks whose event time is not past the wall clock (`seen`: the times the rule got)."""
    job = Job("ticks")

    def not_in_future(tick: Tick, now: datetime) -> None:
        seen.append(now)
        if tick.at > now:
            raise FromTheFuture(f"tick at {tick.at} is past {now}")

    ticks = job.source("ticks", Tick, key=lambda t: t.key, event_time=lambda t: t.at)
    ticks.validate(not_in_future, rejects=(FromTheFuture,), wall_clock=True).to(Sink("ok", Tick))
    return job


def test_a_rule_asking_for_the_wall_clock_judges_by_the_batchs_time() -> None:
    seen: list[datetime] = []
    driver = TestDriver(no_future_ticks(seen), now=T0)
    early = Tick("a", T0 - timedelta(seconds=1), 1)
    ahead = Tick("a", T0 + timedelta(minutes=1), 2)
    driver.send("ticks", early)
    driver.send("ticks", ahead)
    driver.run()
    driver.set_time(T0 + timedelta(minutes=2))
    driver.send("ticks", ahead)

    driver.run()

    assert [r.rule for r in driver.rejections] == ["event_time_in_future"]
    assert driver.results("ok") == [early, ahead]
    assert seen == [T0, T0, T0 + timedelta(minutes=2)]
