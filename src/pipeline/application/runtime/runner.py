"""Running a job: its consumer group on its source topics, and one group per retry level.

`run_job` is what `pipeline-worker <job>`, the demo and the benchmark call. The job's own
group (`<group>`) runs the job; each retry level `<source>.retry.N` has a group
`<group>.retry.N` that only forwards records back once their delay is up. They share `stop`
and `stats`; should one fail, the others are stopped and the error raised. With
`until_caught_up` they run one after the other, the job's group first, each until caught up
(a retry level with nothing to read is skipped), and again while a retry level forwarded
records back. Each group reports to its own `WorkerTelemetry`; with telemetry enabled, a
`Sampler` reports every group's lag and the job's state every `sample_interval_s`.

A job whose sinks are topics (`JobRun.topic_sinks`) runs under Kafka authority: each batch
is one transaction of a transactional producer bound to the job's consumer (outputs,
changelog entries, dead letters, offsets), its state is restored from the changelog topics
on assignment, and a batch the group refused (`Fenced`) rewinds the consumer to the group's
committed offsets with the state restored. Its only dependencies are Kafka and the
registry, so a batch failing transiently is retried in place, paused, until they answer:
there are no retry topics (they exist for batches that fail while the database answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.application.errors import ConfigurationError
from pipeline.application.kafka_authority import (
    TopicSink,
    TransactionalCheckpoint,
    TransactionalLog,
)
from pipeline.application.lag import consumer_lag
from pipeline.application.ports.checkpoint import CheckpointStore
from pipeline.application.ports.event_log import EventConsumer, EventLog, OffsetResolver
from pipeline.application.ports.records import Clock, TopicPartition
from pipeline.application.ports.registry import Codec
from pipeline.application.ports.tables import TableCodec
from pipeline.application.ports.telemetry import Telemetry, WorkerTelemetry
from pipeline.application.ports.tracing import Tracing, WorkerTracing
from pipeline.application.retries import RetryRouter, not_before
from pipeline.application.runtime.background_events import BackgroundEvents, OnEvents
from pipeline.application.runtime.consumer_loop import ConsumerWorker
from pipeline.application.runtime.handler import JobHandler
from pipeline.application.runtime.report import BatchReport
from pipeline.application.runtime.retry_forwarding import RetryForwarder
from pipeline.application.runtime.retry_policy import RetryPolicy
from pipeline.application.runtime.sampling import Sampler
from pipeline.application.runtime.stats import WorkerStats
from pipeline.application.tables import GlobalTables
from pipeline.application.telemetry import NullTelemetry
from pipeline.application.topic_names import retry_topic
from pipeline.application.tracing import NullTracing
from pipeline.domain.errors import PipelineError
from pipeline.streams import Job, JobDefinitionError


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRun:
    """Everything a job's run needs from the composition root."""

    job: Job
    group_id: str
    log: EventLog
    store: CheckpointStore
    codecs: Mapping[str, Codec[Any]]
    clock: Clock
    worker_id: str
    batch_size: int
    batch_timeout: float
    retry: RetryPolicy
    retry_delays_s: Sequence[float]
    telemetry: Telemetry = field(default_factory=NullTelemetry)
    sample_interval_s: float = 5.0
    """How often lag and state are sampled for `telemetry` (when it is enabled)."""
    tracing: Tracing = field(default_factory=NullTracing)
    """Where each group opens its batches' spans."""
    topic_sinks: Mapping[str, TopicSink] | None = None
    """Under Kafka authority: the topic and encoder of each of the job's sinks (`store` is
    then unused); None under database authority."""
    member_id: str = ""
    """Under Kafka authority: this worker's member id in the group, unique among its live
    members and the same when it restarts (transactional.id `<group>-<member id>`)."""
    table_codecs: Mapping[str, TableCodec[Any, Any]] = field(default_factory=dict)
    """How the records of each of the job's global tables are read (`Job.global_table`)."""


async def run_job(
    run: JobRun,
    *,
    stop: asyncio.Event | None = None,
    until_caught_up: bool = False,
    stats: WorkerStats | None = None,
    on_batch: Callable[[WorkerStats], None] | None = None,
    on_events: OnEvents | None = None,
) -> WorkerStats:
    """Run `run.job` until `stop` is set (or, with `until_caught_up`, until no group has
    lag); return the shared statistics. The events its batches stored are handed to
    `on_events` beside the consumer loops (`BackgroundEvents`), all of them before it
    returns."""
    stop = stop or asyncio.Event()
    stats = stats or WorkerStats()
    handing_on = BackgroundEvents(on_events) if on_events is not None else None
    sampler = Sampler(log_=run.log, store=run.store, interval=run.sample_interval_s)
    opened: list[TransactionalCheckpoint] = []

    async def after_batch(report: BatchReport) -> None:
        if report.events and handing_on is not None:
            handing_on.hand(report.events)
        if on_batch is not None:
            on_batch(stats)

    async def main_worker() -> ConsumerWorker[Any]:
        telemetry = run.telemetry.worker(job=run.job.name, forwarder=False)
        if run.topic_sinks is not None:
            return await _transactional_worker(
                run,
                opened,
                reading,
                stop=stop,
                until_caught_up=until_caught_up,
                stats=stats,
                after_batch=after_batch,
                telemetry=telemetry,
                sampler=sampler,
            )
        handler = JobHandler(
            job=run.job,
            group_id=run.group_id,
            codecs=run.codecs,
            store=run.store,
            log_=run.log,
            clock=run.clock,
            worker_id=run.worker_id,
            retries=RetryRouter(
                run.log,
                delays_s=run.retry_delays_s,
                worker_id=run.worker_id,
                group_id=run.group_id,
            ),
        )

        topics = [*run.job.sources, *run.job.tables]
        resolve = _resolver(run, lambda: handler, telemetry)
        consumer = _job_consumer(run, topics, resolve)
        await _tables_read(reading, consumer)
        handler.track(consumer)
        sampler.add(run.group_id, consumer, telemetry, handler.task)
        return _worker(
            run,
            consumer,
            handler,
            stop=stop,
            until_caught_up=until_caught_up,
            stats=stats,
            after_batch=after_batch,
            telemetry=telemetry,
            tracing=run.tracing.worker(job=run.job.name, group_id=run.group_id, topics=topics),
            main=True,
        )

    def retry_worker(group: str, topic: str) -> ConsumerWorker[Any]:
        store = run.store

        async def resolve(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
            return await store.stored_offsets(group, partitions)

        consumer = run.log.consumer(group_id=group, topics=[topic], resolve_offsets=resolve)
        handler = RetryForwarder(group_id=group, log=run.log, store=store)
        telemetry = run.telemetry.worker(job=run.job.name, forwarder=True)
        sampler.add(group, consumer, telemetry)
        return _worker(
            run,
            consumer,
            handler,
            stop=stop,
            until_caught_up=until_caught_up,
            stats=stats,
            after_batch=after_batch,
            telemetry=telemetry,
            tracing=run.tracing.worker(job=run.job.name, group_id=group, topics=[topic]),
            main=False,
        )

    await check_copartitioning(run)
    if run.topic_sinks is None:
        await _start_publishing(run.log)
    # Read whole by this worker before its first batch, followed while it runs; read while
    # the job's consumer joins its group (see `_tables_read`).
    reading = asyncio.create_task(GlobalTables.start(run.job, run.log, run.table_codecs))
    sampling = asyncio.create_task(sampler.run(stop)) if run.telemetry.enabled else None
    try:
        await _run_workers(
            run,
            main_worker,
            retry_worker,
            opened,
            stop=stop,
            until_caught_up=until_caught_up,
            stats=stats,
        )
        if handing_on is not None:
            await handing_on.finish()
        return stats
    finally:
        if handing_on is not None:
            await handing_on.cancel()
        await _close_tables(reading)
        if sampling is not None:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling


async def _tables_read(reading: asyncio.Task[GlobalTables], consumer: EventConsumer) -> None:
    """Wait until the job's global tables are read to their end, `consumer` made: a Kafka
    consumer joins its group in the background from its creation, so the two broker waits
    of a worker's start (the tables' read, the group's join) overlap instead of adding up,
    and no batch is handled before the tables are whole. A table that cannot be read
    closes `consumer` (leaving its group) and stops the run with its error."""
    try:
        await reading
    except BaseException:
        await consumer.close()
        raise


async def _close_tables(reading: asyncio.Task[GlobalTables]) -> None:
    """Stop the tables' read, or stop following them once read."""
    if not reading.done():
        reading.cancel()
    with contextlib.suppress(BaseException):
        await reading
    if not reading.cancelled() and reading.exception() is None:
        await reading.result().close()


async def _start_publishing(log: EventLog) -> None:
    """Start `log`'s producer before the first batch (delivering nothing starts it). A Kafka
    producer's first delivery waits for its producer id, about 0.5 s after its start on a
    local broker: otherwise the first alert relayed after a batch, or the first dead letter,
    waits for it on the consumer loop's path, holding up the batches behind it. Only a
    head start: a broker away now is met (and waited for) where records are published."""
    with contextlib.suppress(PipelineError):
        await log.deliver([])


async def _run_workers(
    run: JobRun,
    main_worker: Callable[[], Awaitable[ConsumerWorker[Any]]],
    retry_worker: Callable[[str, str], ConsumerWorker[Any]],
    opened: list[TransactionalCheckpoint],
    *,
    stop: asyncio.Event,
    until_caught_up: bool,
    stats: WorkerStats,
) -> WorkerStats:
    levels = [
        (f"{run.group_id}.retry.{level}", retry_topic(source, level))
        for source in run.job.sources
        for level in range(1, len(run.retry_delays_s) + 1)
        if run.topic_sinks is None
    ]
    try:
        if until_caught_up:
            # Until nothing is left anywhere: what a retry level forwards back is the job's
            # to handle again, and may come back to a retry level once more.
            while True:
                await (await main_worker()).run()
                forwarded = False
                for group, topic in levels:
                    if stop.is_set() or not await consumer_lag(run.log, run.store, topic, group):
                        continue
                    await retry_worker(group, topic).run()
                    forwarded = True
                if not forwarded or stop.is_set():
                    return stats
        workers = [await main_worker(), *(retry_worker(g, t) for g, t in levels)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # One ended: stop was set, or it failed and the others must stop with it.
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return stats
    finally:
        for checkpoint in opened:
            await checkpoint.close()


async def _transactional_worker(
    run: JobRun,
    opened: list[TransactionalCheckpoint],
    reading: asyncio.Task[GlobalTables],
    *,
    stop: asyncio.Event,
    until_caught_up: bool,
    stats: WorkerStats,
    after_batch: Callable[[BatchReport], Awaitable[None]],
    telemetry: WorkerTelemetry,
    sampler: Sampler,
) -> ConsumerWorker[Any]:
    """The job's worker under Kafka authority (see the module doc); its checkpoint is
    added to `opened`, for the caller to close."""
    handler: JobHandler | None = None

    def made() -> JobHandler:
        assert handler is not None  # made before the consumer's first poll
        return handler

    topics = [*run.job.sources, *run.job.tables]
    resolve = _resolver(run, made, telemetry)
    consumer = _job_consumer(run, topics, resolve)
    checkpoint = await _transactional_checkpoint(run, consumer)
    opened.append(checkpoint)
    await _tables_read(reading, consumer)
    handler = JobHandler(
        job=run.job,
        group_id=run.group_id,
        codecs=run.codecs,
        store=checkpoint,
        log_=run.log,
        clock=run.clock,
        worker_id=run.worker_id,
        kafka_authority=True,
    )
    handler.track(consumer)
    sampler.add(run.group_id, consumer, telemetry, handler.task, offsets=checkpoint)
    return ConsumerWorker(
        consumer=consumer,
        handler=handler,
        batch_size=run.batch_size,
        batch_timeout=run.batch_timeout,
        stop=stop,
        until_caught_up=until_caught_up,
        after_batch=after_batch,
        # Kafka and the registry are all it waits for: in place, for as long as it takes.
        retry=dataclasses.replace(run.retry, attempts=None),
        stats=stats,
        resyncer=handler,
        commit_to_group=False,  # the transaction commits the offsets
        telemetry=telemetry,
        tracing=run.tracing.worker(job=run.job.name, group_id=run.group_id, topics=topics),
    )


def _resolver(
    run: JobRun, handler: Callable[[], JobHandler], telemetry: WorkerTelemetry
) -> Callable[[Sequence[TopicPartition]], Awaitable[Mapping[TopicPartition, int]]]:
    """The offset resolver of the job's consumer: `handler()` restores the state of the
    partitions assigned and gives their stored offsets, which must lie within the log."""

    async def resolve(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        started = time.perf_counter()
        stored = await handler().resolve(partitions)
        telemetry.restored(time.perf_counter() - started)
        if stored:
            await check_within_log(run.log, run.group_id, stored)
        return stored

    return resolve


async def _transactional_checkpoint(run: JobRun, consumer: Any) -> TransactionalCheckpoint:
    """The Kafka-authority checkpoint of the job's consumer, started: older instances of
    this member fenced, changelog topics created, output topics checked."""
    log, sinks = run.log, run.topic_sinks
    assert sinks is not None
    if not isinstance(log, TransactionalLog):
        raise ConfigurationError(
            f"job {run.job.name!r} writes to topics under Kafka authority; "
            f"{type(log).__name__} has no transactions"
        )
    if not run.member_id:
        raise ConfigurationError(f"job {run.job.name!r} needs a member id under Kafka authority")
    checkpoint = log.transactional_checkpoint(
        consumer, member_id=run.member_id, sinks=sinks, steps=run.job.plan().stateful_steps
    )
    try:
        await checkpoint.start()
    except BaseException:
        await checkpoint.close()
        await consumer.close()
        raise
    return checkpoint


def _worker(
    run: JobRun,
    consumer: Any,
    handler: Any,
    *,
    stop: asyncio.Event,
    until_caught_up: bool,
    stats: WorkerStats,
    after_batch: Callable[[BatchReport], Awaitable[None]],
    telemetry: WorkerTelemetry,
    tracing: WorkerTracing,
    main: bool,
) -> ConsumerWorker[Any]:
    return ConsumerWorker(
        consumer=consumer,
        handler=handler,
        batch_size=run.batch_size,
        batch_timeout=run.batch_timeout,
        stop=stop,
        until_caught_up=until_caught_up,
        after_batch=after_batch,
        retry=run.retry,
        stats=stats,
        diverter=handler if main else None,
        # Records of a retry topic wait, paused, until their retry.not_before.
        not_before=None if main else not_before,
        telemetry=telemetry,
        tracing=tracing,
        # A batch fenced in part is read again from the offsets the store holds.
        resyncer=handler if main else None,
    )


def _job_consumer(run: JobRun, topics: Sequence[str], resolve: OffsetResolver) -> EventConsumer:
    """The job's member of its group. A job joining co-partitioned topics asks for the
    range assignor, so that one member holds partition p of each of them: the cooperative
    default balances topic by topic and can give p of one to another member than p of the
    other, whose records would then never meet. A job under Kafka authority writes topics
    that other jobs read, maybe windowed: it reads its partitions interleaved, so that each
    partition of a re-keyed output keeps close to event-time order (see the port)."""
    return run.log.consumer(
        group_id=run.group_id,
        topics=topics,
        resolve_offsets=resolve,
        co_partitioned=bool(run.job.plan().copartitioned_topics()),
        interleaved=run.topic_sinks is not None,
    )


async def check_copartitioning(run: JobRun) -> None:
    """Refuse to start a job whose joined topics have different partition counts (a task
    joins partition p of each with partition p of the others)."""
    plan = run.job.plan()
    topics = {topic for group in plan.copartitioned_topics() for topic in group}
    counts = {}
    for topic in sorted(topics):
        ends = await run.log.end_offsets(topic)
        if ends:
            counts[topic] = len(ends)
    try:
        plan.check_copartitioning(counts)
    except JobDefinitionError as error:
        raise ConfigurationError(str(error)) from error


async def check_within_log(log: EventLog, group: str, stored: Mapping[TopicPartition, int]) -> None:
    """Refuse to resume from offsets past the end of the log: the topic was recreated or the
    broker's data reset while the database was kept. Reading from the start would skip every
    record below the stored offsets, so the worker stops and says so instead."""
    topics = {tp.topic for tp in stored}
    ends = {topic: await log.end_offsets(topic) for topic in topics}
    beyond = [
        f"{tp.topic}[{tp.partition}] stored {offset} > end {ends[tp.topic].get(tp.partition, 0)}"
        for tp, offset in sorted(stored.items())
        if offset > ends[tp.topic].get(tp.partition, 0)
    ]
    if beyond:
        raise ConfigurationError(
            f"consumer group {group!r} has offsets stored in the database past the end of the "
            f"log ({'; '.join(beyond)}): the topic was recreated or the broker's data reset. "
            "Use a new group id (--group-id), or replay into a fresh database."
        )
