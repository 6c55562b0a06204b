"""`scan_batch`: a running fold per key, one call per batch with the states of the keys the
batch carries, kept, checkpointed and restored like `scan`'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.streams import Job, KeyedBatch, Sink, to_millis
from pipeline.streams.testing import TestDriver

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
OUT: Sink[Any] = Sink("out", object)
Value = tuple[str, int, datetime]


def totals(
    batch: KeyedBatch[str, int, Value],
) -> tuple[list[int | None], list[tuple[int, tuple[str, int]]]]:
    """Running totals per key, computed slot by slot; emits each value's running total."""
    states = [state or 0 for state in batch.states]
    out: list[tuple[int, tuple[str, int]]] = []
    for index, (slot, value) in enumerate(zip(batch.slots, batch.values, strict=True)):
        states[slot] += value[1]
        out.append((index, (value[0], states[slot])))
    return list(states), out


def totals_job(calls: list[KeyedBatch[str, int, Value]] | None = None) -> Job:
    job = Job("totals")
    values = job.source("in", tuple, key=lambda v: v[0], event_time=lambda v: v[2])

    def step(
        batch: KeyedBatch[str, int, Value],
    ) -> tuple[Sequence[int | None], list[tuple[int, tuple[str, int]]]]:
        if calls is not None:
            calls.append(batch)
        return totals(batch)

    values.scan_batch(step, step="totals").to(OUT)
    return job


def test_folds_per_key_across_batches_in_one_call_per_batch() -> None:
    calls: list[KeyedBatch[str, int, Value]] = []
    driver = TestDriver(totals_job(calls), now=T0 + timedelta(minutes=1))
    driver.send_all("in", [("a", 1, T0), ("b", 5, T0), ("a", 2, T0)])
    driver.run()
    driver.send("in", ("a", 3, T0))
    driver.run()

    assert driver.results("out") == [("a", 1), ("b", 5), ("a", 3), ("a", 6)]
    assert driver.state("totals") == {"a": 6, "b": 5}
    first, second = calls
    assert (first.keys, first.slots, first.states) == (["a", "b"], [0, 1, 0], [None, None])
    assert (second.keys, second.slots, second.states) == (["a"], [0], [3])


def test_state_survives_a_crash_before_the_checkpoint() -> None:
    driver = TestDriver(totals_job(), now=T0 + timedelta(minutes=1))
    driver.send("in", ("a", 1, T0))
    driver.run()
    driver.send("in", ("a", 2, T0))
    driver.run(commit=False)
    driver.crash()
    driver.run()

    assert driver.results("out") == [("a", 1), ("a", 3)]
    assert driver.state("totals") == {"a": 3}


def test_a_key_in_two_partitions_has_a_state_in_each() -> None:
    driver = TestDriver(totals_job(), partitions=2, now=T0 + timedelta(minutes=1))
    driver.send("in", ("a", 1, T0), partition=0)
    driver.send("in", ("a", 10, T0), partition=1)
    driver.send("in", ("a", 2, T0), partition=0)
    driver.run()

    assert driver.state("totals", part=0) == {"a": 3}
    assert driver.state("totals", part=1) == {"a": 10}


def test_emitted_values_keep_the_key_and_time_of_the_value_they_come_from() -> None:
    job = Job("evens")

    def evens(batch: KeyedBatch[str, int, Value]) -> tuple[list[int], list[tuple[int, str]]]:
        kept = [(i, f"{v[0]}={v[1]}") for i, v in enumerate(batch.values) if v[1] % 2 == 0]
        return [0] * len(batch.states), [(i, text) for i, text in kept for _ in range(2)]

    job.source("in", tuple, key=lambda v: v[0], event_time=lambda v: v[2]).scan_batch(
        evens, step="evens"
    ).to(OUT)
    driver = TestDriver(job, now=T0 + timedelta(minutes=1))
    driver.send_all("in", [("a", 1, T0), ("b", 2, T0 + timedelta(seconds=5))])

    output = driver.run()

    items = output.sinks["out"]
    assert [i.value for i in items] == ["b=2", "b=2"]
    assert {(i.key, i.time) for i in items} == {("b", to_millis(T0 + timedelta(seconds=5)))}


def test_a_state_returned_as_none_deletes_the_key() -> None:
    job = Job("forget")

    def forget(batch: KeyedBatch[str, int, Value]) -> tuple[list[int | None], list[Any]]:
        return [None if key == "a" else 1 for key in batch.keys], []

    job.source("in", tuple, key=lambda v: v[0], event_time=lambda v: v[2]).scan_batch(
        forget, step="forget"
    ).to(OUT)
    driver = TestDriver(job, now=T0 + timedelta(minutes=1))
    driver.send_all("in", [("a", 1, T0), ("b", 1, T0)])
    driver.run()

    assert driver.state("forget") == {"b": 1}


def test_returning_a_state_too_few_is_a_bug_not_a_silent_loss() -> None:
    job = Job("short")
    job.source("in", tuple, key=lambda v: v[0], event_time=lambda v: v[2]).scan_batch(
        lambda batch: (batch.states[1:], []), step="short"
    ).to(OUT)
    driver = TestDriver(job, now=T0)
    driver.send_all("in", [("a", 1, T0), ("b", 1, T0)])

    with pytest.raises(ValueError, match="returned 1 states for 2 keys"):
        driver.run()
