"""What only time shows, sampled for telemetry: every `interval` seconds, the lag of each
partition a job's consumer groups hold in this process, the entries its state holds and the
windows its steps have closed.

Lag is the log's end offset minus the offset the group made durable (stored in the store with
its last batch): the same figure whether the worker runs, waits paused through an outage or
is stuck, which is what an alert on growing lag needs. While the store does not answer,
nothing is made durable, so the offsets it gave last still hold; while the broker does not
answer, the round is skipped and the last sample stands.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from pipeline.application.errors import TransientError
from pipeline.application.lag import OffsetStore
from pipeline.application.ports.event_log import EventConsumer, EventLog
from pipeline.application.ports.records import TopicPartition
from pipeline.application.ports.telemetry import WorkerTelemetry
from pipeline.streams import Task

log = structlog.get_logger(__name__)


@dataclass(slots=True, kw_only=True)
class _Member:
    consumer: EventConsumer
    telemetry: WorkerTelemetry
    task: Task | None
    offsets: OffsetStore | None


class Sampler:
    """Samples the lag and state of the consumer groups `add`ed to it."""

    def __init__(self, *, log_: EventLog, store: OffsetStore, interval: float) -> None:
        self._log = log_
        self._store = store
        self._interval = interval
        self._members: dict[str, _Member] = {}
        self._durable: dict[str, dict[TopicPartition, int]] = {}

    def add(
        self,
        group: str,
        consumer: EventConsumer,
        telemetry: WorkerTelemetry,
        task: Task | None = None,
        offsets: OffsetStore | None = None,
    ) -> None:
        """Sample `group` through `consumer` (replacing an earlier consumer of the group);
        with `task`, the entries of its stateful steps too; with `offsets`, its durable
        offsets come from there (a job under Kafka authority: its checkpoint) instead of the
        sampler's store."""
        self._members[group] = _Member(
            consumer=consumer, telemetry=telemetry, task=task, offsets=offsets
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Sample every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
            if stop.is_set():
                return
            try:
                await self.sample()
            except Exception as error:  # noqa: BLE001 - telemetry never stops a worker
                log.warning("sampling lag and state failed; tried again", error=repr(error))

    async def sample(self) -> None:
        """One round over every group."""
        ends: dict[str, dict[int, int]] = {}
        for group, member in list(self._members.items()):
            task = member.task
            if task is not None:
                member.telemetry.state(
                    {op.node.id: op.state.size() for op in task.stateful if op.state is not None}
                )
                member.telemetry.windows_closed(task.windows_closed())
            held = sorted(member.consumer.assignment())
            try:
                for topic in {tp.topic for tp in held} - set(ends):
                    ends[topic] = await self._log.end_offsets(topic)
            except TransientError as error:
                log.debug("lag not sampled: the log does not answer", error=str(error))
                return
            durable = self._durable.setdefault(group, {})
            if held:
                try:
                    store = member.offsets or self._store
                    durable.update(await store.stored_offsets(group, held))
                except TransientError as error:
                    log.debug("lag sampled from the last stored offsets", error=str(error))
            member.telemetry.lag(
                {
                    tp: max(0, ends[tp.topic].get(tp.partition, 0) - durable.get(tp, 0))
                    for tp in held
                }
            )
