"""Replays: re-run a job over a range of its source topic."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import EventConsumer, Record, TopicPartition
from pipeline.application.runtime.consumer_loop import ConsumerWorker
from pipeline.application.runtime.handler import JobHandler
from pipeline.application.runtime.report import BatchReport
from pipeline.application.runtime.stats import WorkerStats
from pipeline.application.tables import with_global_tables
from pipeline.entrypoints.bootstrap import Pipeline

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayPlan:
    """Which offsets of which partitions a replay covers: [start, stop) per partition."""

    start: Mapping[TopicPartition, int]
    stop: Mapping[TopicPartition, int]

    @property
    def total(self) -> int:
        """Records in the plan."""
        return sum(max(0, self.stop[tp] - self.start[tp]) for tp in self.start)


def plan_replay(
    topic: str,
    end_offsets: Mapping[int, int],
    *,
    from_offset: int | Mapping[int, int],
    to_offset: int | None = None,
    partition: int | None = None,
) -> ReplayPlan:
    """The replay of `topic` from `from_offset` (one offset for every partition, or one per
    partition, e.g. looked up by time) to `to_offset` (exclusive) or the current end, in one
    partition or all. Raises ValueError with a readable message for impossible plans."""
    if not isinstance(from_offset, int):
        starts = from_offset
        plans = [
            plan_replay(topic, {p: end}, from_offset=starts.get(p, end), to_offset=to_offset)
            for p, end in end_offsets.items()
            if partition is None or p == partition
        ]
        if partition is not None and not plans:
            known = ", ".join(str(p) for p in sorted(end_offsets))
            raise ValueError(f"topic {topic} has no partition {partition} (partitions: {known})")
        return ReplayPlan(
            start={tp: o for plan in plans for tp, o in plan.start.items()},
            stop={tp: o for plan in plans for tp, o in plan.stop.items()},
        )
    if from_offset < 0:
        raise ValueError(f"--from-offset must be >= 0, got {from_offset}")
    if to_offset is not None and to_offset <= from_offset:
        raise ValueError(f"--to-offset ({to_offset}) must be greater than --from-offset")
    if partition is not None and partition not in end_offsets:
        known = ", ".join(str(p) for p in sorted(end_offsets))
        raise ValueError(f"topic {topic} has no partition {partition} (partitions: {known})")
    partitions = [partition] if partition is not None else sorted(end_offsets)
    start: dict[TopicPartition, int] = {}
    stop: dict[TopicPartition, int] = {}
    for p in partitions:
        tp = TopicPartition(topic, p)
        end = end_offsets[p]
        stop[tp] = end if to_offset is None else min(to_offset, end)
        start[tp] = min(from_offset, stop[tp])
    return ReplayPlan(start=start, stop=stop)


class ReplayRange:
    """An EventConsumer over a manual reader that ends each partition at the plan's stop
    offset, so that the ordinary ConsumerWorker (retries, pipelining, statistics) runs a
    replay and, with `until_caught_up`, stops at the end of the plan."""

    def __init__(self, reader: EventConsumer, plan: ReplayPlan) -> None:
        self._reader = reader
        self._stop = plan.stop
        self._pending = {tp: stop for tp, stop in plan.stop.items() if plan.start[tp] < stop}

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        """The reader's records below their partition's stop offset."""
        if not self._pending:
            return []
        wanted: list[Record] = []
        for record in await self._reader.poll(max_records, timeout):
            tp = record.topic_partition
            end = self._pending.get(tp)
            if end is None:
                continue
            if record.offset < end:
                wanted.append(record)
            if record.offset + 1 >= end:
                del self._pending[tp]
        return wanted

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Nothing: a replay's offsets live in the store, under its own group."""

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions of the plan."""
        return self._reader.assignment()

    async def lag(self) -> int:
        """0 once every partition reached its stop, or nothing is left to read before it
        (records removed by retention); otherwise the reader's lag."""
        if not self._pending:
            return 0
        return await self._reader.lag()

    async def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Move the reader; a partition moved back below its stop is read again up to it."""
        await self._reader.seek(offsets)
        for tp, offset in offsets.items():
            stop = self._stop.get(tp)
            if stop is not None and offset < stop:
                self._pending[tp] = stop

    async def pause(self) -> None:
        """Pause the reader."""
        await self._reader.pause()

    async def resume(self) -> None:
        """Resume the reader."""
        await self._reader.resume()

    async def close(self) -> None:
        """Close the reader."""
        await self._reader.close()


async def replay_job(
    pipeline: Pipeline,
    name: str,
    plan: ReplayPlan,
    *,
    group_id: str,
    progress: Progress | None = None,
) -> WorkerStats:
    """Re-run job `name` over `plan` as consumer group `group_id` (its state starts empty
    unless the group has some). Sinks are idempotent, so rows already stored stay as they
    are; a job whose sinks are topics is refused (ConfigurationError). A window that was
    already open where the replay starts in a partition would be computed from part of its
    records: such windows are not written (their rows keep what the job computed from all
    of them); replay from an earlier offset to rebuild them."""
    stats = WorkerStats()
    entry = pipeline.job(name)
    run = pipeline.job_run(name, group_id=group_id)
    if run.topic_sinks is not None:
        raise ConfigurationError(
            f"job {name!r} writes to Kafka topics: a replay would write its outputs again as "
            "new records, which their readers cannot tell from the first ones. To compute "
            "them again, run `pipeline-worker` with a new --group-id (its state starts "
            "empty), or reset the group's offsets with the workers stopped"
        )
    if plan.total == 0:
        return stats
    on_events = entry.on_events(pipeline) if entry.on_events is not None else None
    handler = JobHandler(
        job=run.job,
        group_id=group_id,
        codecs=run.codecs,
        store=run.store,
        log_=None,  # the records were dead-lettered when first consumed: stored, not re-sent
        clock=run.clock,
        worker_id=run.worker_id,
        partial_windows={tp.partition for tp, start in plan.start.items() if start > 0},
    )
    await handler.resolve(list(plan.start))

    async def after_batch(report: BatchReport) -> None:
        if report.events and on_events is not None:
            await on_events(report.events)
        if progress is not None:
            progress(stats.records)

    worker: ConsumerWorker[Any] = ConsumerWorker(
        consumer=ReplayRange(pipeline.log.reader(group_id=group_id, start=plan.start), plan),
        handler=handler,
        batch_size=pipeline.settings.worker.batch_size,
        batch_timeout=1.0,
        until_caught_up=True,
        after_batch=after_batch,
        stats=stats,
    )
    # The global tables as they are now, not as they were: a join reads processing time.
    return await with_global_tables(run.job, pipeline.log, run.table_codecs, worker.run)
