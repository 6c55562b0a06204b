"""`pipeline produce shop|payments|social --processes N`: one run in N processes.

A run is `LANES` lanes of entities (sessions, accounts, posts) merged by event time; process
i of N generates and publishes only lanes i, i + N, … (`lanes_of`), from the same start and
count, so together they publish exactly the events, keys, labels and topics of a one-process
run, each key's events from one process in order, and nothing is generated twice: on N free
cores the run goes about N times as fast (see README, "Producing").

The processes are spawned (a fresh interpreter each: no librdkafka thread is forked), ignore
Ctrl-C (the terminal sends it to all of them) and stop when the parent, which handles it, tells
them to; each
reports how many events it sent through a shared counter, and its result or its error through
a queue.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pipeline.application.errors import PublishError
from pipeline.application.generators.base import Lane
from pipeline.application.generators.production import lanes_of
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.logging import configure_logging
from pipeline.entrypoints.runtime import tune_gc_for_streaming
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.simulated import produce_simulated

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Event as ProcessEvent

    from pipeline.entrypoints.replay import Progress

__all__ = ["produce_in_processes"]

_POLL_S = 0.1
"""How often the parent reads the counters and a process looks whether to stop."""


async def produce_in_processes(
    settings: Settings,
    domain: str,
    *,
    processes: int,
    count: int | None,
    rate: float,
    seed: int,
    now: datetime,
    stop: asyncio.Event,
    progress: Progress | None = None,
) -> Counter[str]:
    """What `produce_simulated` does, by `processes` processes each publishing its lanes;
    return how many events went to each topic over all of them. Setting `stop` stops them
    all; the first error of a process is raised once all have ended. ConfigurationError for
    more processes than lanes."""
    shares = [lanes_of(index, processes) for index in range(processes)]
    context = multiprocessing.get_context("spawn")
    stopping = context.Event()
    results: multiprocessing.SimpleQueue[tuple[dict[str, int] | None, BaseException | None]]
    results = context.SimpleQueue()
    counters = [context.Value("q", 0, lock=False) for _ in range(processes)]
    run = _Run(settings, domain, count, rate, seed, now)
    workers = [
        context.Process(
            target=_process_main,
            args=(run, shares[index]),
            kwargs={"produced": counters[index], "stopping": stopping, "results": results},
            name=f"pipeline-produce-{index}",
        )
        for index in range(processes)
    ]
    # Started with Ctrl-C ignored, which a new interpreter keeps: the terminal sends it to
    # the whole process group, and a child still importing would die of it.
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for worker in workers:
            worker.start()
    finally:
        signal.signal(signal.SIGINT, interrupt)
    try:
        while any(worker.is_alive() for worker in workers):
            if stop.is_set():
                stopping.set()
            if progress is not None:
                progress(sum(counter.value for counter in counters))
            await asyncio.sleep(_POLL_S)
    finally:
        stopping.set()
        for worker in workers:
            await asyncio.to_thread(worker.join)
    sent = _outcome(results, workers)
    if progress is not None:
        progress(sent.total())
    return sent


def _outcome(
    results: multiprocessing.SimpleQueue[tuple[dict[str, int] | None, BaseException | None]],
    workers: Sequence[BaseProcess],
) -> Counter[str]:
    """What the ended processes sent, summed; the first error one of them reported."""
    sent: Counter[str] = Counter()
    errors: list[BaseException] = []
    while not results.empty():
        counts, error = results.get()
        if error is not None:
            errors.append(error)
        elif counts is not None:
            sent.update(counts)
    if errors:
        raise errors[0]
    failed = [worker.name for worker in workers if worker.exitcode != 0]
    if failed:
        raise PublishError(f"producer process {', '.join(failed)} died without a result")
    return sent


@dataclass(frozen=True, slots=True)
class _Run:
    """What every process of a run is told (pickled to it)."""

    settings: Settings
    domain: str
    count: int | None
    rate: float
    seed: int
    now: datetime


def _process_main(
    run: _Run,
    lanes: tuple[Lane, ...],
    *,
    produced: Synchronized[int],
    stopping: ProcessEvent,
    results: multiprocessing.SimpleQueue[tuple[dict[str, int] | None, BaseException | None]],
) -> None:
    """A process's run: its lanes, until done or told to stop; its result on `results`."""
    configure_logging(run.settings.log_level, run.settings.log_format)
    try:
        sent = asyncio.run(_process_run(run, lanes, produced=produced, stopping=stopping))
    except BaseException as error:  # noqa: BLE001 - handed to the parent, which reports it
        results.put((None, error))
        return
    results.put((dict(sent), None))


async def _process_run(
    run: _Run, lanes: tuple[Lane, ...], *, produced: Synchronized[int], stopping: ProcessEvent
) -> Counter[str]:
    stop = asyncio.Event()

    async def watch() -> None:
        while not stopping.is_set():  # noqa: ASYNC110 - another process's event: polled
            await asyncio.sleep(_POLL_S)
        stop.set()

    def report(total: int) -> None:
        produced.value = total

    watcher = asyncio.create_task(watch())
    pipeline = await bootstrap(run.settings)
    tune_gc_for_streaming()
    try:
        return await produce_simulated(
            pipeline,
            run.domain,
            count=run.count,
            rate=run.rate,
            seed=run.seed,
            stop=stop,
            progress=report,
            now=run.now,
            lanes=lanes,
        )
    finally:
        watcher.cancel()
        await pipeline.aclose()
