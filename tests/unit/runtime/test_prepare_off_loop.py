"""A batch's run through the job happens off the event loop: the loop goes on (answering the
transaction of the batch before) meanwhile, and a restore on assignment waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.application.ports import Record, TopicPartition, TopicSpec
from pipeline.application.runtime.handler import DECODE_SLICE, JobHandler
from pipeline.streams import Job, Sink
from tests.unit.runtime.jobs import ListSink, Tick, TickCodec, TickRefused

TOPIC = "ticks"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PARTS = [TopicPartition(TOPIC, p) for p in (0, 1)]
PATIENCE_S = 5.0
"""How long the job's step waits for the loop: far beyond what the loop needs, so only a
loop held by the step itself runs it out."""


def slow_job(step: Any) -> Job:
    """Ticks through `step` (a validation that refuses nothing) into the sink `ticks`."""
    job = Job("slow")
    ticks = job.source(TOPIC, Tick, key=lambda t: t.key, event_time=lambda t: t.at)
    ticks.validate(step, rejects=(TickRefused,)).to(Sink("ticks", Tick))
    return job


class NotedLoads:
    """A checkpoint store noting in `events` when state is loaded (a restore)."""

    def __init__(self, inner: InMemoryCheckpointStore, events: list[str]) -> None:
        self.inner = inner
        self.events = events

    async def load_state(self, group_id: str, parts: Sequence[int]) -> Any:
        self.events.append("state loaded")
        return await self.inner.load_state(group_id, parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def ticks(count: int = 1) -> list[Record]:
    """`count` ticks of one key, as read from the log."""
    log = InMemoryEventLog()
    await log.ensure_topics([TopicSpec(name=TOPIC, partitions=2)])
    codec = TickCodec()
    for i in range(count):
        await log.publish(TOPIC, b"a", await codec.encode(Tick("a", T0, i)))
    await log.flush()
    reader = log.reader(group_id="r", start={tp: 0 for tp in PARTS})
    records: list[Record] = []
    while len(records) < count:
        records += await reader.poll(count, 0.05)
    await reader.close()
    return records


def handler_of(job: Job, store: Any, codec: TickCodec | None = None) -> JobHandler:
    return JobHandler(
        job=job, group_id="g", codecs={TOPIC: codec or TickCodec()}, store=store, log_=None,
        clock=ManualClock(T0 + timedelta(seconds=1)), worker_id="w",
    )  # fmt: skip


async def test_the_loop_runs_other_tasks_while_a_batch_runs_through_the_job() -> None:
    loop_ran = threading.Event()
    seen: list[bool] = []

    def step(_: Tick) -> None:  # as slow as the loop lets it be
        seen.append(loop_ran.wait(PATIENCE_S))

    async def meanwhile() -> None:  # e.g. the transaction before, answered
        await asyncio.sleep(0.01)
        loop_ran.set()

    store = InMemoryCheckpointStore({"ticks": ListSink(lambda t: (t.key, t.at))})
    handler = handler_of(slow_job(step), store)
    await handler.resolve(PARTS)
    records = await ticks()
    other = asyncio.create_task(meanwhile())

    await handler.prepare(records)

    await other
    assert seen == [True]


async def test_a_restore_on_assignment_waits_for_the_batch_running_through_the_job() -> None:
    events: list[str] = []
    go_on = threading.Event()

    def step(_: Tick) -> None:
        events.append("step entered")
        go_on.wait(PATIENCE_S)
        events.append("step left")

    inner = InMemoryCheckpointStore({"ticks": ListSink(lambda t: (t.key, t.at))})
    handler = handler_of(slow_job(step), NotedLoads(inner, events))
    await handler.resolve(PARTS)
    events.clear()
    records = await ticks()
    preparing = asyncio.create_task(handler.prepare(records))
    while not events:  # the batch is in the job's step
        await asyncio.sleep(0.001)

    restoring = asyncio.create_task(handler.resolve(PARTS))  # a reassignment
    await asyncio.sleep(0.05)
    go_on.set()
    await asyncio.gather(preparing, restoring)

    assert events == ["step entered", "step left", "state loaded"]


async def test_a_large_batch_is_decoded_a_slice_at_a_time_with_the_loop_let_run_between() -> None:
    happened: list[str] = []

    class NotedCodec(TickCodec):
        async def decode_many(self, payloads: Sequence[bytes | None]) -> list[Any]:
            happened.append(f"decoded {len(payloads)}")
            return await super().decode_many(payloads)

    async def meanwhile() -> None:
        happened.append("loop ran")

    store = InMemoryCheckpointStore({"ticks": ListSink(lambda t: (t.key, t.value))})
    handler = handler_of(slow_job(lambda _: None), store, NotedCodec())
    await handler.resolve(PARTS)
    records = await ticks(DECODE_SLICE + 1)
    other = asyncio.create_task(meanwhile())

    await handler.prepare(records)

    await other
    assert happened == [f"decoded {DECODE_SLICE}", "loop ran", "decoded 1"]


async def test_a_prepare_cancelled_while_the_job_runs_ends_only_once_the_run_is_over() -> None:
    events: list[str] = []
    go_on = threading.Event()

    def step(_: Tick) -> None:
        events.append("step entered")
        go_on.wait(PATIENCE_S)
        events.append("step left")

    store = InMemoryCheckpointStore({"ticks": ListSink(lambda t: (t.key, t.at))})
    handler = handler_of(slow_job(step), store)
    await handler.resolve(PARTS)
    preparing = asyncio.create_task(handler.prepare(await ticks()))
    while not events:
        await asyncio.sleep(0.001)

    preparing.cancel()
    await asyncio.sleep(0.05)
    ended_while_running = preparing.done()
    go_on.set()
    with contextlib.suppress(asyncio.CancelledError):
        await preparing

    assert not ended_while_running
    assert preparing.cancelled()
    assert events == ["step entered", "step left"]
