"""`Stream.top_k`: per partition and window, the keys with the largest results."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.streams import (
    Count,
    Job,
    JobDefinitionError,
    Ranking,
    Session,
    Sink,
    TopK,
    Tumbling,
    Windowed,
)
from pipeline.streams.testing import TestDriver
from tests.unit.streams.window_jobs import T0, TOPIC, Event, seconds, send, window

TRENDING = Sink("trending", Ranking, "the top tags per window and partition")
GLOBAL_TOP = Sink("global", Windowed, "the global top tags per window")
TEN_SECONDS = Tumbling(size=seconds(10), grace=seconds(0))


def trending_job(*, final: bool = True, k: int = 2) -> Job:
    job = Job("trending")
    tags = job.source(TOPIC, Event, key=lambda e: e.key, event_time=lambda e: e.time)
    counts = tags.window(TEN_SECONDS, step="counts").aggregate(Count())
    (counts.final() if final else counts.updates()).top_k(k, by=lambda n: n, step="top").to(
        TRENDING
    )
    return job


def rankings(driver: TestDriver) -> list[tuple[int, object, tuple[tuple[str, int], ...]]]:
    return [(r.partition, r.window, r.top) for r in driver.results(TRENDING.name)]


def test_the_top_keys_of_a_window_leave_once_when_the_window_closes() -> None:
    driver = TestDriver(trending_job(), now=T0)
    send(driver, *(Event(tag, 1) for tag in ["x", "y", "x", "z", "y", "x"]))
    driver.run()
    assert rankings(driver) == []
    send(driver, Event("x", 10))
    driver.run()
    assert rankings(driver) == [(0, window(0, 10), (("x", 3), ("y", 2)))]


def test_keys_with_equal_results_are_ranked_by_key() -> None:
    driver = TestDriver(trending_job(), now=T0)
    send(driver, *(Event(tag, 1) for tag in ["c", "b", "a", "c", "b", "a"]), Event("d", 10))
    driver.run()
    assert rankings(driver)[0][2] == (("a", 2), ("b", 2))


def test_after_updates_the_latest_result_of_each_key_is_ranked_at_close() -> None:
    driver = TestDriver(trending_job(final=False), now=T0)
    send(driver, Event("x", 1), Event("y", 1), Event("y", 2))
    driver.run()
    send(driver, Event("x", 3), Event("x", 4))
    driver.run()
    send(driver, Event("z", 10))
    driver.run()
    assert rankings(driver) == [(0, window(0, 10), (("x", 3), ("y", 2)))]


def test_results_collected_before_a_crash_are_ranked_after_it() -> None:
    driver = TestDriver(trending_job(final=False), now=T0)
    send(driver, Event("x", 1), Event("y", 1), Event("y", 2))
    driver.run()
    send(driver, Event("x", 3), Event("z", 10))
    driver.run(commit=False)
    driver.crash()
    driver.run()
    assert rankings(driver) == [(0, window(0, 10), (("x", 2), ("y", 2)))]


def test_each_partition_ranks_its_own_keys() -> None:
    driver = TestDriver(trending_job(k=1), partitions=2, now=T0)
    send(driver, Event("x", 1), Event("x", 2), Event("w", 12), partition=0)
    send(driver, Event("y", 1), Event("y", 15), partition=1)
    driver.run()
    assert sorted(rankings(driver)) == [
        (0, window(0, 10), (("x", 2),)),
        (1, window(0, 10), (("y", 1),)),
    ]


def test_a_global_top_k_ranks_the_partitions_rankings_again_in_one_partition() -> None:
    first = TestDriver(trending_job(k=3), partitions=3, now=T0)
    tags = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] * 6 + ["f"]
    send(first, *(Event(tag, 1) for tag in tags), *(Event(t, 20) for t in "abcdef"))
    first.run()
    partial = first.results(TRENDING.name)

    second_job = Job("trending-global")
    (
        second_job.source(
            "trending-partial",
            Ranking,
            key=lambda r: "all",
            event_time=lambda r: r.window.start_time,
        )
        .flat_map(lambda r: r.top)
        .window(TEN_SECONDS, step="global")
        .aggregate(TopK(3, of=lambda e: e[0], weight=lambda e: e[1]))
        .final()
        .to(GLOBAL_TOP)
    )
    second = TestDriver(second_job, now=T0)
    for ranking in partial:
        second.send("trending-partial", ranking)
    second.run()
    second.advance(timedelta(minutes=5))  # the single partition idles: its window closes
    assert [r.value for r in second.results(GLOBAL_TOP.name)] == [[("e", 6), ("a", 5), ("b", 4)]]


def test_top_k_after_a_session_window_is_refused() -> None:
    job = Job("sessions")
    events = job.source(TOPIC, Event, key=lambda e: e.key, event_time=lambda e: e.time)
    sessions = events.window(Session(gap=seconds(5), grace=seconds(0)), step="s")
    results = sessions.aggregate(Count()).final()
    with pytest.raises(JobDefinitionError, match="tumbling and hopping"):
        results.top_k(3, by=lambda n: n, step="top")


def test_top_k_of_a_stream_that_is_not_window_results_is_refused() -> None:
    job = Job("plain")
    events = job.source(TOPIC, Event, key=lambda e: e.key, event_time=lambda e: e.time)
    mapped = events.map(lambda e: Windowed(e.key, window(0, 1), 1, True))
    with pytest.raises(JobDefinitionError, match="ranks the results of a window step"):
        mapped.top_k(3, by=lambda n: n, step="top")
