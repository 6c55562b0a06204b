"""A partition idles only once it is read to its end: a backlog that takes longer than the
idle timeout to arrive (a restore, a slow fetch) is never made late by the idle clock."""

from __future__ import annotations

from pipeline.streams import Tumbling
from tests.unit.streams.window_jobs import (
    Event,
    driver_for,
    results,
    seconds,
    send,
    window,
    windowed_job,
)

TUMBLING = Tumbling(size=seconds(10), grace=seconds(0))


def test_a_backlog_slower_to_arrive_than_the_idle_timeout_is_not_late() -> None:
    driver = driver_for(windowed_job(TUMBLING, idle_timeout=30))
    backlog = [Event("a", 1), Event("a", 5), Event("a", 12)]
    send(driver, *backlog)

    driver.advance(seconds(120))  # not read yet: the partition is not idle
    driver.run()

    assert driver.late == []
    assert results(driver) == [("a", window(0, 10), 2, True)]


def test_a_partition_with_records_left_is_not_idle_while_another_one_is() -> None:
    driver = driver_for(windowed_job(TUMBLING, idle_timeout=30), partitions=2)
    send(driver, Event("quiet", 1), partition=1)
    driver.run()  # partition 1 read to its end
    send(driver, Event("slow", 1), Event("slow", 12), partition=0)

    driver.advance(seconds(120))

    assert results(driver) == [("quiet", window(0, 10), 1, True)]
    driver.run()
    assert driver.late == []
    assert ("slow", window(0, 10), 1, True) in results(driver)


def test_the_idle_timer_of_a_backlog_starts_once_it_is_read_to_its_end() -> None:
    driver = driver_for(windowed_job(TUMBLING, idle_timeout=30))
    send(driver, Event("a", 1))
    driver.advance(seconds(120))
    driver.run()  # read to its end at second 120

    driver.advance(seconds(29.999))
    assert results(driver) == []
    driver.advance(seconds(0.001))  # idle for 30 s since: the watermark follows the clock
    assert results(driver) == [("a", window(0, 10), 1, True)]
