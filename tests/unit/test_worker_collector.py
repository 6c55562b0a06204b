"""A worker starts with the cycle collector off (its start-up objects live as long as it
does) and runs with it on, tuned for streaming, the start-up's objects frozen out of it."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Iterator

import pytest

from pipeline.entrypoints import worker
from pipeline.entrypoints.runtime import tune_gc_for_streaming
from pipeline.entrypoints.settings import Settings


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.enable()


def test_a_worker_starts_with_the_collector_off_and_ends_with_it_on(
    monkeypatch: pytest.MonkeyPatch, collector_restored: None
) -> None:
    seen: list[bool] = []

    async def starting(args: argparse.Namespace, settings: Settings) -> int:
        seen.append(gc.isenabled())
        raise RuntimeError("the worker failed to start")

    monkeypatch.setattr(worker, "run_worker", starting)

    with pytest.raises(RuntimeError, match="failed to start"):
        worker.main(["sensors"])

    assert seen == [False]
    assert gc.isenabled()


def test_tuning_for_streaming_turns_the_collector_on_with_the_start_up_frozen(
    collector_restored: None,
) -> None:
    gc.disable()

    tune_gc_for_streaming()

    assert gc.isenabled()
    assert gc.get_threshold() == (100_000, 50, 100)
    assert gc.get_freeze_count() > 0
