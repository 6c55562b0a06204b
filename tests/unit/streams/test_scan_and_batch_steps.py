"""`scan` (a running fold per key, in keyed state) and `map_batch` (one call per batch: the
payments job's scoring step)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.streams import Job, Sink
from pipeline.streams.testing import TestDriver

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
OUT: Sink[Any] = Sink("out", object)


def running_totals_job(calls: list[int] | None = None) -> Job:
    job = Job("totals")
    values = job.source("in", tuple, key=lambda v: v[0], event_time=lambda v: v[2])

    def fold(total: int | None, value: tuple[str, int, datetime]) -> tuple[int, tuple[str, int]]:
        new = (total or 0) + value[1]
        return new, (value[0], new)

    def batch(items: list[tuple[str, int]]) -> list[tuple[str, int]]:
        if calls is not None:
            calls.append(len(items))
        return [(key, total * 10) for key, total in items]

    values.scan(fold, step="totals").map_batch(batch).to(OUT)
    return job


def test_scan_folds_per_key_across_batches() -> None:
    driver = TestDriver(running_totals_job(), now=T0 + timedelta(minutes=1))
    driver.send_all("in", [("a", 1, T0), ("b", 5, T0), ("a", 2, T0)])
    driver.run()
    driver.send("in", ("a", 3, T0))
    driver.run()

    assert driver.results("out") == [("a", 10), ("b", 50), ("a", 30), ("a", 60)]
    assert driver.state("totals") == {"a": 6, "b": 5}


def test_scan_state_survives_a_crash_before_the_checkpoint() -> None:
    driver = TestDriver(running_totals_job(), now=T0 + timedelta(minutes=1))
    driver.send("in", ("a", 1, T0))
    driver.run()
    driver.send("in", ("a", 2, T0))
    driver.run(commit=False)
    driver.crash()
    driver.run()

    assert driver.results("out") == [("a", 10), ("a", 30)]


def test_map_batch_is_called_once_per_batch_with_every_value() -> None:
    calls: list[int] = []
    driver = TestDriver(running_totals_job(calls), now=T0 + timedelta(minutes=1))
    driver.send_all("in", [("a", 1, T0)] * 7)
    driver.run(batch_size=5)

    assert calls == [5, 2]


def test_map_batch_returning_a_value_too_few_is_a_bug_not_a_silent_drop() -> None:
    job = Job("short")
    job.source("in", int, key=lambda v: v, event_time=lambda v: T0).map_batch(
        lambda values: values[1:]
    ).to(OUT)
    driver = TestDriver(job, now=T0)
    driver.send_all("in", [1, 2])

    with pytest.raises(ValueError, match="returned 1 values for 2"):
        driver.run()
