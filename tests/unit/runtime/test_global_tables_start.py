"""A worker's start: its global tables are read while its consumer joins the group, and its
first batch still waits for them whole."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.memory.table import InMemoryChangelogTable
from pipeline.application.errors import BrokerUnavailable
from pipeline.application.ports import EventConsumer
from pipeline.application.runtime.runner import JobRun, run_job
from tests.unit.runtime.jobs import ListSink
from tests.unit.runtime.test_join_runtime import global_enrich


class SlowTableLog(InMemoryEventLog):
    """An in-memory log whose tables finish their first read only once `table_may_finish`
    is set, and that records when the job's consumer is made and closed."""

    def __init__(self) -> None:
        super().__init__()
        self.table_may_finish = asyncio.Event()
        self.consumer_made = asyncio.Event()
        self.closed_consumers = 0
        self.table_error: Exception | None = None

    def consumer(self, **asked: Any) -> EventConsumer:
        made = super().consumer(**asked)
        self.consumer_made.set()
        close = made.close

        async def counted_close() -> None:
            self.closed_consumers += 1
            await close()

        made.close = counted_close  # type: ignore[method-assign]
        return made

    def changelog_table(self, topic: str, **decoders: Any) -> InMemoryChangelogTable[Any, Any]:
        table = super().changelog_table(topic, **decoders)
        read = table.start

        async def slow_start() -> None:
            await self.table_may_finish.wait()
            if self.table_error is not None:
                raise self.table_error
            await read()

        table.start = slow_start  # type: ignore[method-assign]
        return table


async def world() -> tuple[SlowTableLog, ListSink, JobRun]:
    log = SlowTableLog()
    sink, run = await global_enrich(log, (("a", "gold"), ("b", "silver")))
    return log, sink, run


async def test_the_job_consumer_joins_its_group_while_the_global_table_is_read() -> None:
    log, sink, run = await world()
    running = asyncio.create_task(run_job(run, until_caught_up=True))

    # The table's read waits for the consumer: a worker reading it first would never start.
    await asyncio.wait_for(log.consumer_made.wait(), 5)
    log.table_may_finish.set()
    await asyncio.wait_for(running, 5)

    assert sink.rows == {"o0": ("o0", "gold"), "o1": ("o1", "silver")}


async def test_no_batch_is_handled_before_the_global_table_is_read_whole() -> None:
    log, sink, run = await world()
    running = asyncio.create_task(run_job(run, until_caught_up=True))
    await asyncio.wait_for(log.consumer_made.wait(), 5)

    await asyncio.sleep(0.2)  # ten batch timeouts: time for batches, were any handled
    handled_meanwhile = dict(sink.rows)
    log.table_may_finish.set()
    await asyncio.wait_for(running, 5)

    assert handled_meanwhile == {}
    assert sink.rows == {"o0": ("o0", "gold"), "o1": ("o1", "silver")}


async def test_a_global_table_that_cannot_be_read_stops_the_run_and_closes_the_consumer() -> None:
    log, sink, run = await world()
    log.table_error = BrokerUnavailable("changelog topic 'accounts' not read to its end")
    log.table_may_finish.set()

    with pytest.raises(BrokerUnavailable, match="accounts"):
        await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    assert log.closed_consumers == 1
    assert sink.rows == {}
