"""Session windows: gaps, merges, closing, late records, tombstones, restore."""

from __future__ import annotations

from pipeline.streams import Collect, Session
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

GAP10 = Session(gap=seconds(10), grace=seconds(0))


def collect() -> Collect[Event, float]:
    return Collect(of=lambda e: e.at)


def test_records_less_than_the_gap_apart_share_a_session() -> None:
    driver = driver_for(windowed_job(GAP10, collect()))
    send(driver, Event("a", 0), Event("a", 9.999), Event("a", 19), Event("a", 100))
    driver.run()
    assert results(driver)[0] == ("a", window(0, 19.001), [0, 9.999, 19], True)


def test_a_record_a_full_gap_after_the_last_starts_a_new_session() -> None:
    driver = driver_for(windowed_job(GAP10, collect()))
    send(driver, Event("a", 0), Event("a", 10), Event("a", 100))
    driver.run()
    assert results(driver)[:2] == [
        ("a", window(0, 0.001), [0], True),
        ("a", window(10, 10.001), [10], True),
    ]


def test_keys_have_sessions_of_their_own() -> None:
    driver = driver_for(windowed_job(GAP10))
    send(driver, Event("a", 0), Event("b", 5), Event("a", 100))
    driver.run()
    assert results(driver) == [
        ("a", window(0, 0.001), 1, True),
        ("b", window(5, 5.001), 1, True),
    ]


def test_a_record_bridging_two_sessions_merges_them() -> None:
    driver = driver_for(windowed_job(Session(gap=seconds(10), grace=seconds(30)), collect()))
    send(driver, Event("a", 0), Event("a", 18))
    driver.run()
    send(driver, Event("a", 9))  # within 10 s of both
    driver.run()
    send(driver, Event("a", 200))
    driver.run()
    assert results(driver)[0] == ("a", window(0, 18.001), [0, 18, 9], True)


def test_a_session_closes_when_the_watermark_reaches_its_last_record_plus_gap_and_grace() -> None:
    driver = driver_for(windowed_job(Session(gap=seconds(10), grace=seconds(5))))
    send(driver, Event("a", 0), Event("b", 14.999))
    driver.run()
    assert results(driver) == []
    send(driver, Event("b", 15))
    driver.run()
    assert results(driver) == [("a", window(0, 0.001), 1, True)]


def test_a_record_within_grace_joins_its_session() -> None:
    driver = driver_for(windowed_job(Session(gap=seconds(10), grace=seconds(5)), collect()))
    send(driver, Event("a", 0), Event("b", 14), Event("a", 3), Event("b", 100))
    driver.run()
    assert results(driver)[0] == ("a", window(0, 3.001), [0, 3], True)
    assert driver.late == []


def test_a_record_whose_session_would_already_be_closed_goes_to_the_late_list() -> None:
    driver = driver_for(windowed_job(Session(gap=seconds(10), grace=seconds(5))))
    late = Event("a", 0)
    send(driver, Event("b", 15), late)
    driver.run()
    assert [r.item.value for r in driver.late] == [late]
    assert "a" not in driver.state("window")


def test_a_record_within_the_gap_of_a_closed_session_is_late_not_a_new_session() -> None:
    # With 5 s of out-of-orderness, second 25 moves the watermark to 20 and closes [0, 0]
    # (0 + 10 + 10 grace); a record at 8 could still start a session of its own (8 + 20 >
    # 20) but it lies within the gap of the session that has left.
    job = windowed_job(Session(gap=seconds(10), grace=seconds(10)), out_of_orderness=5)
    driver = driver_for(job)
    straggler = Event("a", 8)
    send(driver, Event("a", 0), Event("b", 25))
    driver.run()
    send(driver, straggler, Event("b", 100))
    driver.run()
    assert ("a", window(0, 0.001), 1, True) in results(driver)
    assert [r.item.value for r in driver.late] == [straggler]
    assert not any(key == "a" and w.start != window(0, 1).start for key, w, *_ in results(driver))


def test_a_session_closed_earlier_in_the_same_batch_is_closed_for_the_records_after_it() -> None:
    job = windowed_job(Session(gap=seconds(10), grace=seconds(10)), out_of_orderness=5)
    driver = driver_for(job)
    straggler = Event("a", 8)
    send(driver, Event("a", 0), Event("b", 25), straggler, Event("b", 100))
    driver.run()  # one batch: [0, 0] is emitted at its end, after the straggler was read
    assert ("a", window(0, 0.001), 1, True) in results(driver)
    assert [r.item.value for r in driver.late] == [straggler]


def test_a_closed_sessions_end_is_forgotten_once_no_record_could_fall_near_it() -> None:
    job = windowed_job(Session(gap=seconds(10), grace=seconds(10)), out_of_orderness=5)
    driver = driver_for(job)
    send(driver, Event("a", 0), Event("b", 25))
    driver.run()
    assert "a" in driver.state("window")  # closed at 20, remembered until 0 + 2·10 + 10
    send(driver, Event("b", 35))
    driver.run()
    assert "a" not in driver.state("window")


def test_updates_emit_each_touched_session_once_per_batch() -> None:
    driver = driver_for(windowed_job(GAP10, final=False))
    send(driver, Event("a", 0), Event("a", 0), Event("b", 1))
    driver.run()
    assert results(driver) == [
        ("a", window(0, 0.001), 2, False),
        ("b", window(1, 1.001), 1, False),
    ]


def test_updates_send_a_tombstone_for_each_window_a_merge_supersedes() -> None:
    driver = driver_for(windowed_job(Session(gap=seconds(10), grace=seconds(30)), final=False))
    send(driver, Event("a", 0), Event("a", 18))
    driver.run()
    send(driver, Event("a", 9))
    driver.run()
    assert results(driver)[2:] == [
        ("a", window(0, 0.001), None, False),
        ("a", window(18, 18.001), None, False),
        ("a", window(0, 18.001), 3, False),
    ]


def test_updates_send_a_tombstone_for_a_sessions_previous_extent() -> None:
    driver = driver_for(windowed_job(GAP10, final=False))
    send(driver, Event("a", 0))
    driver.run()
    send(driver, Event("a", 5))
    driver.run()
    assert results(driver) == [
        ("a", window(0, 0.001), 1, False),
        ("a", window(0, 0.001), None, False),
        ("a", window(0, 5.001), 2, False),
    ]


def test_updates_send_nothing_for_a_session_created_and_merged_in_one_batch() -> None:
    driver = driver_for(windowed_job(Session(gap=seconds(10), grace=seconds(30)), final=False))
    send(driver, Event("a", 0), Event("a", 18), Event("a", 9))
    driver.run()
    assert results(driver) == [("a", window(0, 18.001), 3, False)]


def test_a_session_open_at_a_crash_closes_after_the_restore() -> None:
    driver = driver_for(windowed_job(GAP10, collect()))
    send(driver, Event("a", 0), Event("a", 5))
    driver.run()
    send(driver, Event("a", 7), Event("b", 30))
    driver.run(commit=False)
    driver.crash()
    driver.run()
    assert results(driver) == [("a", window(0, 7.001), [0, 5, 7], True)]


def test_a_session_moved_by_a_rebalance_closes_on_its_new_owner() -> None:
    driver = driver_for(windowed_job(GAP10), partitions=2)
    send(driver, Event("a", 0), partition=1)
    driver.run()
    driver.rebalance(revoke=[1])
    driver.rebalance(assign=[1])
    send(driver, Event("a", 40), partition=1)
    driver.run()
    assert results(driver) == [("a", window(0, 0.001), 1, True)]


def test_a_silent_partitions_last_session_closes_after_the_idle_timeout() -> None:
    driver = driver_for(windowed_job(GAP10, idle_timeout=30))
    send(driver, Event("a", 1))
    driver.run()
    driver.advance(seconds(40))  # idle since 0: watermark 40 − 30 = 10 < 1 + 10
    assert results(driver) == []
    driver.advance(seconds(1))
    assert results(driver) == [("a", window(1, 1.001), 1, True)]


# A replay from the middle of the log: a (0) b (4) | a (5) a (8) b (12) a (30) a (35) b (40)
# a (100). Read from a (5) on, a's session [5, 8] and b's [12, 12] lack their records at 0
# and 4 (b's at 4 is within the gap of 12); a's [30, 35] and b's [40, 40] start more than a
# gap after the first record read, so no record before it could belong to them.
REPLAYED_LOG = (
    *(Event("a", 0), Event("b", 4), Event("a", 5), Event("a", 8), Event("b", 12)),
    *(Event("a", 30), Event("a", 35), Event("b", 40), Event("a", 100)),
)


def test_a_replay_from_mid_log_emits_only_the_sessions_it_read_whole() -> None:
    driver = driver_for(windowed_job(GAP10, collect()))
    send(driver, *REPLAYED_LOG)
    driver.run()
    original = results(driver)

    driver.replay(from_offset=2)
    driver.run()

    assert results(driver) == [
        ("a", window(30, 35.001), [30, 35], True),
        ("b", window(40, 40.001), [40], True),
    ]
    assert results(driver) == [r for r in original if r[1].start >= ms(30)]


def test_a_replay_from_mid_log_sends_no_update_or_tombstone_of_a_partial_session() -> None:
    driver = driver_for(windowed_job(GAP10, final=False))
    send(driver, *REPLAYED_LOG)
    driver.run(batch_size=1)
    original = results(driver)

    driver.replay(from_offset=2)
    driver.run(batch_size=1)

    assert results(driver) == [r for r in original if r[1].start >= ms(30)]
    assert [r[1].start for r in results(driver)] == [ms(30), ms(30), ms(30), ms(40), ms(100)]
