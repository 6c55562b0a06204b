"""Properties of every window kind, over generated streams (hypothesis):

- results do not depend on batch boundaries (per-partition watermarks judge each record by
  the watermark when it was read);
- a crash at any point (a batch processed but not committed, then lost) and any rebalance
  give the same committed results and late records as a run without them;
- `.updates()` applied to an upserting sink (tombstones delete) ends where `.final()` does;
- the final results are the windows of the records that were not late, computed offline.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.streams import Collect, Hopping, Session, Sliding, Tumbling
from pipeline.streams.testing import TestDriver
from pipeline.streams.windows import WindowKind
from tests.unit.streams.window_jobs import Event, driver_for, ms, seconds, send, windowed_job

KINDS: dict[str, WindowKind] = {
    "tumbling": Tumbling(size=seconds(10), grace=seconds(5)),
    "hopping": Hopping(size=seconds(10), advance=seconds(5), grace=seconds(3)),
    "session": Session(gap=seconds(7), grace=seconds(4)),
    "sliding": Sliding(size=seconds(10), grace=seconds(4)),
}
OUT_OF_ORDERNESS = 3
PARTITIONS = 2  # keys a and c live in partition 0, b and d in partition 1

Result = tuple[str, int, int, tuple[int, ...] | None, bool]
Outcome = tuple[list[Result], list[int]]


def _timed(steps: list[tuple[str, int, int]]) -> list[Event]:
    """Events whose times move on by `step` and stray by `jitter` (half seconds): mostly in
    order, some out of order around the watermark and the windows' closing times."""
    events, clock = [], 0
    for i, (key, step, jitter) in enumerate(steps):
        clock += step
        events.append(Event(key, max(0, clock + jitter) / 2, id=i))
    return events


streams = st.lists(
    st.tuples(
        st.sampled_from("abcd"),
        st.integers(min_value=0, max_value=8),
        st.integers(min_value=-24, max_value=4),
    ),
    max_size=40,
).map(_timed)
plans = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=12),  # records sent before the step
        st.sampled_from(["commit", "crash", "crash before reading", "rebalance"]),
        st.integers(min_value=1, max_value=5),  # batch size
    ),
    max_size=8,
)
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_driver(kind: str, *, final: bool = True) -> TestDriver:
    job = windowed_job(
        KINDS[kind],
        Collect(of=lambda e: e.id),
        final=final,
        out_of_orderness=OUT_OF_ORDERNESS,
        idle_timeout=3600,
    )
    return driver_for(job, partitions=PARTITIONS)


def close_everything(driver: TestDriver) -> None:
    """Let the wall clock run far past every event: idle partitions close every window."""
    driver.run()
    driver.advance(timedelta(hours=3))


def outcome(driver: TestDriver) -> Outcome:
    results: list[Result] = sorted(
        (
            r.key,
            r.window.start,
            r.window.end,
            None if r.value is None else tuple(r.value),
            r.final,
        )
        for r in driver.results("results")
    )
    return results, sorted(late.item.value.id for late in driver.late)


def in_one_go(kind: str, events: list[Event], *, final: bool = True) -> TestDriver:
    driver = new_driver(kind, final=final)
    send(driver, *events)
    close_everything(driver)
    return driver


def following(
    kind: str, events: list[Event], plan: list[tuple[int, str, int]], *, final: bool = True
) -> TestDriver:
    """Send the events a few at a time, each step committing, crashing or rebalancing."""
    driver = new_driver(kind, final=final)
    sent = 0
    for count, step, batch_size in plan:
        send(driver, *events[sent : sent + count])
        sent += count
        if step == "commit":
            driver.run(batch_size=batch_size)
        elif step == "crash":
            driver.run(batch_size=batch_size, commit=False)
            driver.crash()
        elif step == "crash before reading":
            driver.crash()
        else:
            moved = batch_size % PARTITIONS
            driver.rebalance(revoke=[moved])
            driver.run(batch_size=batch_size)
            driver.rebalance(assign=[moved])
    send(driver, *events[sent:])
    close_everything(driver)
    return driver


@pytest.mark.parametrize("kind", sorted(KINDS))
@fast
@given(events=streams, batch_size=st.integers(min_value=1, max_value=4))
def test_results_do_not_depend_on_batch_boundaries(
    kind: str, events: list[Event], batch_size: int
) -> None:
    driver = new_driver(kind)
    send(driver, *events)
    driver.run(batch_size=batch_size)
    close_everything(driver)
    assert outcome(driver) == outcome(in_one_go(kind, events))


@pytest.mark.parametrize("kind", sorted(KINDS))
@fast
@given(events=streams, plan=plans)
def test_crashes_and_rebalances_anywhere_give_the_results_of_a_run_without_them(
    kind: str, events: list[Event], plan: list[tuple[int, str, int]]
) -> None:
    assert outcome(following(kind, events, plan)) == outcome(in_one_go(kind, events))


@pytest.mark.parametrize("kind", sorted(KINDS))
@fast
@given(events=streams, plan=plans)
def test_updates_upserted_into_a_sink_end_at_the_final_results(
    kind: str, events: list[Event], plan: list[tuple[int, str, int]]
) -> None:
    table: dict[tuple[str, int, int], tuple[int, ...]] = {}
    driver = following(kind, events, plan, final=False)
    for result in driver.results("results"):
        row = (result.key, result.window.start, result.window.end)
        if result.value is None:
            del table[row]
        else:
            table[row] = tuple(result.value)
    finals = outcome(in_one_go(kind, events))[0]
    assert sorted((*row, value, True) for row, value in table.items()) == finals


@pytest.mark.parametrize("kind", ["session", "sliding", "tumbling"])
@fast
@given(events=streams)
def test_final_results_are_the_windows_of_the_records_that_were_not_late(
    kind: str, events: list[Event]
) -> None:
    results, late = outcome(in_one_go(kind, events))
    accepted = [e for e in events if e.id not in set(late)]
    assert ids_sorted(results) == offline_windows(kind, accepted)


@fast
@given(events=streams)
def test_a_hopping_record_is_in_each_of_its_windows_still_open_when_it_was_read(
    events: list[Event],
) -> None:
    results, late = outcome(in_one_go("hopping", events))
    partition = {"a": 0, "c": 0, "b": 1, "d": 1}
    stream_time = {0: -1e9, 1: -1e9}
    windows: dict[tuple[str, int, int], list[int]] = defaultdict(list)
    expected_late = []
    for e in events:  # each partition is read in the order sent
        part = partition[e.key]
        stream_time[part] = max(stream_time[part], e.at)
        watermark = stream_time[part] - OUT_OF_ORDERNESS
        starts = [s for s in range(int(e.at // 5) * 5, int(e.at) - 10, -5) if s <= e.at < s + 10]
        open_starts = [s for s in starts if s + 10 + 3 > watermark]
        for start in open_starts:
            windows[(e.key, ms(start), ms(start + 10))].append(e.id)
        if not open_starts:
            expected_late.append(e.id)
    assert late == sorted(expected_late)
    assert ids_sorted(results) == sorted((*w, tuple(sorted(ids))) for w, ids in windows.items())


def ids_sorted(results: list[Result]) -> list[tuple[str, int, int, tuple[int, ...]]]:
    return sorted(
        (key, start, end, tuple(sorted(ids or ()))) for key, start, end, ids, _ in results
    )


def offline_windows(kind: str, events: list[Event]) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """The windows of `events`, computed directly from the definitions of each kind."""
    by_key: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_key[event.key].append(event)
    windows: dict[tuple[str, int, int], list[Event]] = defaultdict(list)
    for key, mine in by_key.items():
        if kind == "tumbling":
            for e in mine:
                start = int(e.at // 10) * 10
                windows[(key, ms(start), ms(start + 10))].append(e)
        elif kind == "sliding":
            for t in {e.at for e in mine}:
                window = (key, ms(t - 10), ms(t) + 1)
                windows[window] = [e for e in mine if t - 10 <= e.at <= t]
        else:
            ordered = sorted(mine, key=lambda e: e.at)
            session: list[Event] = []
            for e in ordered:
                if session and e.at - session[-1].at >= 7:
                    windows[(key, ms(session[0].at), ms(session[-1].at) + 1)] = session
                    session = []
                session.append(e)
            if session:
                windows[(key, ms(session[0].at), ms(session[-1].at) + 1)] = session
    return sorted((*window, tuple(sorted(e.id for e in es))) for window, es in windows.items())
