"""Tumbling and hopping windows: membership, grace, late records, idle partitions."""

from __future__ import annotations

from pipeline.streams import Collect, Hopping, Task, Tumbling
from tests.unit.streams.window_jobs import (
    LATE,
    Event,
    driver_for,
    ms,
    results,
    seconds,
    send,
    window,
    windowed_job,
)

TUMBLING = Tumbling(size=seconds(10), grace=seconds(0))


def test_a_record_exactly_at_a_window_end_belongs_to_the_next_window() -> None:
    driver = driver_for(windowed_job(TUMBLING, Collect(of=lambda e: e.at)))
    send(driver, Event("a", 9.999), Event("a", 10), Event("a", 25))
    driver.run()
    assert results(driver) == [
        ("a", window(0, 10), [9.999], True),
        ("a", window(10, 20), [10], True),
    ]


def test_a_hopping_record_belongs_to_every_window_that_covers_it() -> None:
    hopping = Hopping(size=seconds(10), advance=seconds(5), grace=seconds(0))
    driver = driver_for(windowed_job(hopping, Collect(of=lambda e: e.at)))
    send(driver, Event("a", 7), Event("a", 10), Event("a", 40))
    driver.run()
    assert sorted(results(driver), key=lambda r: r[1]) == [
        ("a", window(0, 10), [7], True),
        ("a", window(5, 15), [7, 10], True),
        ("a", window(10, 20), [10], True),
    ]


def test_a_window_closes_when_the_watermark_reaches_its_end_plus_grace() -> None:
    driver = driver_for(windowed_job(Tumbling(size=seconds(10), grace=seconds(5))))
    send(driver, Event("a", 1), Event("a", 14.999))
    driver.run()
    assert results(driver) == []
    send(driver, Event("a", 15))
    driver.run()
    assert results(driver) == [("a", window(0, 10), 1, True)]


def test_a_record_within_grace_is_counted() -> None:
    driver = driver_for(windowed_job(Tumbling(size=seconds(10), grace=seconds(5))))
    send(driver, Event("a", 1), Event("a", 14), Event("a", 9), Event("a", 30))
    driver.run()
    assert results(driver)[0] == ("a", window(0, 10), 2, True)
    assert driver.late == []


def test_a_record_after_grace_goes_to_the_runtime_late_list() -> None:
    driver = driver_for(windowed_job(Tumbling(size=seconds(10), grace=seconds(5))))
    late = Event("a", 9, id=7)
    send(driver, Event("a", 1), Event("a", 15), late)
    driver.run()
    assert results(driver) == [("a", window(0, 10), 1, True)]
    assert [(r.step, r.item.value) for r in driver.late] == [("window", late)]


def test_a_record_after_grace_goes_to_the_late_output_when_one_is_declared() -> None:
    job = windowed_job(Tumbling(size=seconds(10), grace=seconds(5)), route_late=True)
    driver = driver_for(job)
    late = Event("a", 9, id=7)
    send(driver, Event("a", 1), Event("a", 15), late)
    driver.run()
    assert driver.results(LATE.name) == [late]
    assert driver.late == []


def test_updates_emit_the_current_result_of_each_touched_window_once_per_batch() -> None:
    driver = driver_for(windowed_job(TUMBLING, final=False))
    send(driver, Event("a", 1), Event("a", 2), Event("b", 3))
    driver.run()
    send(driver, Event("a", 4))
    driver.run()
    assert results(driver) == [
        ("a", window(0, 10), 2, False),
        ("b", window(0, 10), 1, False),
        ("a", window(0, 10), 3, False),
    ]


def test_updates_every_interval_emit_the_windows_changed_since_once_each() -> None:
    driver = driver_for(windowed_job(TUMBLING, final=False, every=1))
    send(driver, Event("a", 1), Event("b", 2))
    driver.run()  # the first emission is not held back
    send(driver, Event("a", 3))
    driver.run()
    driver.set_time(driver.now + seconds(0.5))
    send(driver, Event("a", 4), Event("c", 5))
    driver.run()
    assert results(driver) == [("a", window(0, 10), 1, False), ("b", window(0, 10), 1, False)]

    driver.set_time(driver.now + seconds(0.5))  # a second since the last emission
    send(driver, Event("c", 6))
    driver.run()

    assert results(driver)[2:] == [("a", window(0, 10), 3, False), ("c", window(0, 10), 2, False)]


def test_updates_every_interval_come_out_partition_by_partition_spread_over_it() -> None:
    driver = driver_for(windowed_job(TUMBLING, final=False, every=1), partitions=6)
    for part in range(6):
        send(driver, Event(f"k{part}", 1), partition=part)
    driver.run()  # the first emission is not held back: every partition's
    assert len(results(driver)) == 6

    emitted: list[list[str]] = []
    for step in range(10):  # a second in steps of 0.1 s, every partition changed in each
        driver.set_time(driver.now + seconds(0.1))
        for part in range(6):
            send(driver, Event(f"k{part}", 2 + step / 10), partition=part)
        before = len(results(driver))
        driver.run()
        emitted.append(sorted(key for key, *_ in results(driver)[before:]))

    # Each partition's window once in the second, the six not all in one batch.
    assert sorted(key for keys in emitted for key in keys) == [f"k{part}" for part in range(6)]
    assert max(len(keys) for keys in emitted) <= 2


def test_updates_held_back_come_out_when_the_window_closes_or_the_worker_stops() -> None:
    driver = driver_for(windowed_job(TUMBLING, final=False, every=60))
    send(driver, Event("a", 1), Event("b", 2))
    driver.run()
    send(driver, Event("a", 3), Event("b", 4), Event("c", 11))
    driver.run()  # second 11 closes [0, 10): its windows' last updates, held back or not
    assert results(driver)[2:] == [
        ("a", window(0, 10), 2, False),
        ("b", window(0, 10), 2, False),
    ]

    send(driver, Event("c", 12))
    driver.run()
    assert len(results(driver)) == 4
    driver.stop()

    assert results(driver)[4:] == [("c", window(10, 20), 2, False)]


def test_after_a_crash_exactly_the_updates_held_back_are_emitted() -> None:
    kind = Tumbling(size=seconds(10), grace=seconds(30))
    driver = driver_for(windowed_job(kind, final=False, every=60))
    send(driver, Event("a", 1), Event("a", 12))
    driver.run()  # emitted: [0, 10) and [10, 20), one each
    send(driver, Event("a", 13))
    driver.run()  # held back, its mark checkpointed with the state
    driver.crash()
    send(driver, Event("b", 14))
    driver.run()

    assert sorted(results(driver)[2:]) == [
        ("a", window(10, 20), 2, False),
        ("b", window(10, 20), 1, False),
    ]  # not [0, 10) again: the sink has its update


def test_a_silent_partitions_last_window_closes_after_the_idle_timeout() -> None:
    driver = driver_for(windowed_job(TUMBLING, idle_timeout=30))
    send(driver, Event("a", 1))
    driver.run()
    driver.advance(seconds(29.999))
    assert results(driver) == []
    driver.advance(seconds(0.001))  # idle for 30 s: the watermark is now − 30 s = second 0
    assert results(driver) == []
    driver.advance(seconds(10))  # second 10: the window [0, 10) closes
    assert results(driver) == [("a", window(0, 10), 1, True)]


def test_an_active_partition_is_not_held_back_by_a_silent_one() -> None:
    driver = driver_for(windowed_job(TUMBLING), partitions=2)
    send(driver, Event("quiet", 1), partition=1)
    send(driver, Event("busy", 1), Event("busy", 12), partition=0)
    driver.run()
    assert results(driver) == [("busy", window(0, 10), 1, True)]


def test_a_window_closed_by_the_idle_clock_stays_closed_after_a_crash() -> None:
    driver = driver_for(windowed_job(TUMBLING, idle_timeout=30))
    send(driver, Event("a", 1))
    driver.run()
    driver.advance(seconds(45))  # idle: watermark second 15, [0, 10) closes
    driver.crash()
    straggler = Event("a", 5)
    send(driver, straggler)
    driver.run()
    driver.advance(seconds(60))
    assert results(driver) == [("a", window(0, 10), 1, True)]
    assert [r.item.value for r in driver.late] == [straggler]


def test_a_window_the_idle_clock_made_late_stays_late_after_a_crash() -> None:
    driver = driver_for(windowed_job(TUMBLING, idle_timeout=30))
    driver.advance(seconds(45))  # idle from the start: watermark second 15, nothing closes
    first, second = Event("a", 5, id=1), Event("a", 6, id=2)
    send(driver, first)
    driver.run()  # judged by watermark 15: late
    driver.crash()
    send(driver, second)
    driver.run()
    driver.advance(seconds(60))
    assert results(driver) == []
    assert [r.item.value for r in driver.late] == [first, second]


def test_an_idle_tick_that_closes_nothing_changes_no_state() -> None:
    task = Task(windowed_job(TUMBLING, idle_timeout=30).plan())
    task.assign(0, {}, ms(0))
    task.advance(ms(45))
    assert task.watermarks[0] == ms(15)
    assert task.changes() == []
