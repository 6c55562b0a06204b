"""Sliding windows: [t − size, t] per record, grace, late records, eviction, restore."""

from __future__ import annotations

from pipeline.streams import Collect, Sliding
from pipeline.streams.testing import TestDriver
from tests.unit.streams.window_jobs import (
    Event,
    driver_for,
    ms,
    results,
    seconds,
    send,
    window,
    windowed_job,
)

SIZE10 = Sliding(size=seconds(10), grace=seconds(0))


def collect() -> Collect[Event, float]:
    return Collect(of=lambda e: e.at)


def test_a_records_window_holds_the_keys_records_of_the_size_before_it_both_ends_included() -> None:
    driver = driver_for(windowed_job(SIZE10, collect()))
    send(driver, Event("a", 0), Event("a", 0.001), Event("a", 10), Event("a", 100))
    driver.run()
    assert results(driver)[2] == ("a", window(0, 10.001), [0, 0.001, 10], True)


def test_a_record_just_older_than_the_size_is_outside_the_window() -> None:
    driver = driver_for(windowed_job(SIZE10, collect()))
    send(driver, Event("a", 0), Event("a", 10.001), Event("a", 100))
    driver.run()
    assert results(driver)[1] == ("a", window(0.001, 10.002), [10.001], True)


def test_records_at_the_same_time_share_one_window() -> None:
    driver = driver_for(windowed_job(SIZE10))
    send(driver, Event("a", 5), Event("a", 5), Event("a", 100))
    driver.run()
    assert results(driver) == [("a", window(-5, 5.001), 2, True)]


def test_a_window_closes_once_the_watermark_passes_its_record_plus_grace() -> None:
    driver = driver_for(windowed_job(Sliding(size=seconds(10), grace=seconds(5))))
    send(driver, Event("a", 0), Event("b", 5))
    driver.run()
    assert results(driver) == []
    send(driver, Event("b", 5.001))
    driver.run()
    assert results(driver) == [("a", window(-10, 0.001), 1, True)]


def test_an_out_of_order_record_within_grace_counts_in_every_window_it_falls_into() -> None:
    driver = driver_for(windowed_job(Sliding(size=seconds(10), grace=seconds(20)), collect()))
    send(driver, Event("a", 2), Event("a", 8), Event("a", 15), Event("a", 5), Event("a", 100))
    driver.run()
    assert results(driver)[:4] == [
        ("a", window(-8, 2.001), [2], True),
        ("a", window(-5, 5.001), [2, 5], True),
        ("a", window(-2, 8.001), [2, 5, 8], True),
        ("a", window(5, 15.001), [5, 8, 15], True),
    ]


def test_updates_emit_every_window_an_out_of_order_record_changed() -> None:
    driver = driver_for(windowed_job(Sliding(size=seconds(10), grace=seconds(20)), final=False))
    send(driver, Event("a", 2), Event("a", 8), Event("a", 15))
    driver.run()
    send(driver, Event("a", 5))
    driver.run()
    assert results(driver)[3:] == [
        ("a", window(-5, 5.001), 2, False),
        ("a", window(-2, 8.001), 3, False),
        ("a", window(5, 15.001), 3, False),
    ]


def test_a_record_whose_own_window_has_closed_is_late_and_joins_no_window() -> None:
    driver = driver_for(windowed_job(Sliding(size=seconds(10), grace=seconds(5)), collect()))
    straggler = Event("a", 3)
    send(driver, Event("a", 0), Event("a", 6), Event("b", 9))
    driver.run()  # watermark 9: the window at 3 would have closed at 3 + 5.001
    send(driver, straggler, Event("b", 100))
    driver.run()
    assert ("a", window(-4, 6.001), [0, 6], True) in results(driver)
    assert [r.item.value for r in driver.late] == [straggler]


def test_a_buffered_record_is_evicted_once_no_window_can_need_it() -> None:
    driver = driver_for(windowed_job(Sliding(size=seconds(10), grace=seconds(5))))
    send(driver, Event("a", 0), Event("b", 15))
    driver.run()
    assert buffered(driver) == ["a", "b"]
    send(driver, Event("b", 15.001))  # the window at 10 (the last to hold 0) has closed
    driver.run()
    assert buffered(driver) == ["b", "b"]


def test_buffers_restored_after_a_crash_give_the_same_windows() -> None:
    driver = driver_for(windowed_job(SIZE10, collect()))
    send(driver, Event("a", 0), Event("a", 4))
    driver.run()
    send(driver, Event("a", 8), Event("b", 30))
    driver.run(commit=False)
    driver.crash()
    driver.run()
    assert results(driver) == [
        ("a", window(-10, 0.001), [0], True),
        ("a", window(-6, 4.001), [0, 4], True),
        ("a", window(-2, 8.001), [0, 4, 8], True),
    ]


def test_windows_closed_before_a_crash_are_not_emitted_again_after_it() -> None:
    driver = driver_for(windowed_job(Sliding(size=seconds(10), grace=seconds(2))))
    send(driver, Event("a", 0), Event("a", 5))
    driver.run()  # watermark 5: the window at 0 closed, both records still buffered
    driver.crash()
    send(driver, Event("a", 30))
    driver.run()
    assert [w for _, w, _, _ in results(driver)] == [window(-10, 0.001), window(-5, 5.001)]


def buffered(driver: TestDriver) -> list[str]:
    """The keys of the records the window step holds in committed state."""
    return sorted(key[0] for key in driver.state("window") if isinstance(key, tuple))


def test_a_silent_partitions_last_window_closes_after_the_idle_timeout() -> None:
    driver = driver_for(windowed_job(SIZE10, idle_timeout=30))
    send(driver, Event("a", 1))
    driver.run()
    driver.advance(seconds(31))  # idle since 0: watermark 1, the window closes after it
    assert results(driver) == []
    driver.advance(seconds(0.001))
    assert results(driver) == [("a", window(-9, 1.001), 1, True)]


# A replay from the middle of the log: a (0) | a (5) a (12) a (20) a (31) a (100). Read
# from a (5) on, the windows [−5, 5] and [2, 12] lack the record at 0; [10, 20] and
# [21, 31] start after the first record read, so no record before it belongs to them.
REPLAYED_LOG = (Event("a", 0), Event("a", 5), Event("a", 12), Event("a", 20), Event("a", 31))


def test_a_replay_from_mid_log_emits_only_the_windows_it_read_whole() -> None:
    driver = driver_for(windowed_job(SIZE10, collect()))
    send(driver, *REPLAYED_LOG, Event("a", 100))
    driver.run()
    original = results(driver)

    driver.replay(from_offset=1)
    driver.run()

    assert results(driver) == [
        ("a", window(10, 20.001), [12, 20], True),
        ("a", window(21, 31.001), [31], True),
    ]
    assert results(driver) == [r for r in original if r[1].start >= ms(10)]


def test_a_replay_from_mid_log_sends_no_update_of_a_partial_window() -> None:
    driver = driver_for(windowed_job(SIZE10, collect(), final=False))
    send(driver, *REPLAYED_LOG)
    driver.run(batch_size=1)
    original = results(driver)

    driver.replay(from_offset=1)
    driver.run(batch_size=1)

    assert results(driver) == [
        ("a", window(10, 20.001), [12, 20], False),
        ("a", window(21, 31.001), [31], False),
    ]
    assert results(driver) == [r for r in original if r[1].start >= ms(10)]
