"""The validate step: a rule that depends on the time is given the batch's wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.streams import Job, Sink
from pipeline.streams.testing import TestDriver
from tests.unit.runtime.jobs import Tick, TickRefused

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


def screened_ticks(
    screened: list[list[int]], checked: list[int], *, dead_letter: bool = True
) -> Job:
    """Ticks with a negative count are refused; a screen names the suspects of each batch
    (`screened`), and the check records the counts it was asked about (`checked`)."""
    job = Job("ticks")

    def positive(tick: Tick, now: datetime) -> None:
        del now
        checked.append(tick.value)
        if tick.value < 0:
            raise TickRefused(f"count {tick.value} is negative")

    def suspects(ticks: list[Tick], now: datetime) -> list[int]:
        del now
        found = [i for i, t in enumerate(ticks) if t.value < 0]
        screened.append(found)
        return found

    ticks = job.source("ticks", Tick, key=lambda t: t.key, event_time=lambda t: t.at)
    ticks.validate(
        positive, rejects=(TickRefused,), wall_clock=True, screen=suspects, dead_letter=dead_letter
    ).to(Sink("ok", Tick))
    return job


def test_a_screened_validation_checks_only_the_values_its_screen_names() -> None:
    screened: list[list[int]] = []
    checked: list[int] = []
    driver = TestDriver(screened_ticks(screened, checked), now=T0)
    ticks = [Tick("a", T0 - timedelta(seconds=s), n) for s, n in ((3, 1), (2, -1), (1, 2))]
    for tick in ticks:
        driver.send("ticks", tick)

    driver.run()

    assert screened == [[1]]
    assert checked == [-1]
    assert driver.results("ok") == [ticks[0], ticks[2]]
    assert [r.rule for r in driver.rejections] == ["negative_tick"]


def test_a_screened_validation_without_dead_letters_only_counts_its_refusals() -> None:
    driver = TestDriver(screened_ticks([], [], dead_letter=False), now=T0)
    driver.send("ticks", Tick("a", T0 - timedelta(seconds=1), -1))

    driver.run()

    assert [(r.rule, r.dead_letter) for r in driver.rejections] == [("negative_tick", False)]
