"""The runtime's telemetry, read back from the Prometheus adapter: what every job gets for
free, reported once per batch (and lag and state once per sampling interval)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import structlog

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry
from pipeline.application.ports import DeadLetterFilter, TopicSpec
from pipeline.application.runtime.runner import JobRun, run_job
from pipeline.application.runtime.sampling import Sampler
from tests.faults import FaultyCheckpoint
from tests.unit.runtime.jobs import Tick, tick_job
from tests.unit.runtime.test_job_runtime import (
    T0,
    TOPIC,
    Sinks,
    at,
    clock,
    job_run,
    log,
    publish,
    read_all,
    store_for,
)

__all__ = ["clock", "log"]  # fixtures

T = TypeVar("T")


def metered(run: JobRun, telemetry: PrometheusTelemetry, interval: float = 0.05) -> JobRun:
    return dataclasses.replace(run, telemetry=telemetry, sample_interval_s=interval)


def value(telemetry: PrometheusTelemetry, name: str, **labels: str) -> float:
    found = telemetry.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


async def eventually_async(
    read: Callable[[], Awaitable[T]], holds: Callable[[T], bool], seconds: float = 5.0
) -> T:
    for _ in range(int(seconds / 0.02)):
        found = await read()
        if holds(found):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"never held; last {found!r}")


async def test_a_batch_reports_what_its_records_became_by_topic_and_error_class(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    telemetry = PrometheusTelemetry()
    sinks = Sinks()
    # Two good ticks, one a rule refuses, one undecodable, one late (5 minutes behind).
    await publish(
        log, Tick("a", at(300), 1), Tick("a", at(301), 2), Tick("a", at(302), -1),
        Tick("a", at(5), 3), raw=[b"{not json"],
    )  # fmt: skip

    run = metered(job_run(log, store_for(sinks), clock), telemetry)
    stats = await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    job = {"pipeline_job": "ticks"}
    assert value(telemetry, "pipeline_records_consumed_total", **job, topic=TOPIC) == 5
    assert value(telemetry, "pipeline_records_processed_total", **job) == 3
    for error_class in ("negative_tick", "malformed_payload"):
        dead = {**job, "topic": TOPIC, "error_class": error_class}
        assert value(telemetry, "pipeline_records_dead_lettered_total", **dead) == 1
    assert value(telemetry, "pipeline_late_records_total", **job) == 1
    assert value(telemetry, "pipeline_batch_size_records_sum", **job) == 5
    assert value(telemetry, "pipeline_batch_size_records_count", **job) == stats.batches
    for stage in ("prepare", "apply"):
        count = value(telemetry, "pipeline_batch_duration_seconds_count", **job, stage=stage)
        assert count == stats.batches
    assert value(telemetry, "pipeline_db_transaction_duration_seconds_count", **job) >= 1
    assert value(telemetry, "pipeline_end_to_end_latency_seconds_count", **job) == 5
    assert value(telemetry, "pipeline_state_restore_duration_seconds_count", **job) >= 1


async def test_a_record_refused_without_a_dead_letter_is_counted_not_dead_lettered(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    telemetry = PrometheusTelemetry()
    store = store_for(Sinks())
    await publish(log, Tick("a", at(300), 1), Tick("a", at(301), -1))
    run = dataclasses.replace(
        metered(job_run(log, store, clock), telemetry), job=tick_job(TOPIC, dead_letter=False)
    )

    stats = await asyncio.wait_for(run_job(run, until_caught_up=True), 5)

    job = {"pipeline_job": "ticks"}
    refused = {**job, "topic": TOPIC, "error_class": "negative_tick"}
    assert value(telemetry, "pipeline_records_refused_total", **refused) == 1
    assert value(telemetry, "pipeline_records_dead_lettered_total", **refused) == 0
    assert value(telemetry, "pipeline_records_processed_total", **job) == 1
    assert stats.rejected == {"negative_tick": 1}
    assert await read_all(log, f"{TOPIC}.dlq") == []
    assert await store.dead_letters.find_dead_letters(DeadLetterFilter()) == []


async def test_records_moved_to_a_retry_topic_are_counted_by_error_class_and_level(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    telemetry = PrometheusTelemetry()
    sinks = Sinks()
    store = FaultyCheckpoint(store_for(sinks), failures=2, only_with_rows=True)
    await publish(log, *(Tick("a", at(i), i) for i in range(4)))
    stop = asyncio.Event()
    run = metered(job_run(log, store, clock, retry_delays=[0.0]), telemetry)

    running = asyncio.create_task(run_job(run, stop=stop))
    await eventually(lambda: sinks.count("a", T0) == 4)
    stop.set()
    await asyncio.wait_for(running, 5)

    job = {"pipeline_job": "ticks"}
    retried = {**job, "topic": f"{TOPIC}.retry.1", "error_class": "StoreUnavailable"}
    assert value(telemetry, "pipeline_records_retried_total", **retried) == 4
    attempts = {**job, "error_class": "StoreUnavailable"}
    assert value(telemetry, "pipeline_retry_attempts_total", **attempts) >= 1
    # Read from the retry topic by its level's group, then processed once by the job.
    assert value(telemetry, "pipeline_records_consumed_total", **job, topic=f"{TOPIC}.retry.1") == 4
    assert value(telemetry, "pipeline_records_processed_total", **job) == 4


async def test_lag_grows_while_nothing_becomes_durable_and_falls_once_it_does(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    telemetry = PrometheusTelemetry()
    store = FaultyCheckpoint(store_for(Sinks()))
    store.down = True  # a database outage: no batch becomes durable, however long it lasts
    await publish(log, Tick("a", at(1), 1), Tick("b", at(2), 2), Tick("c", at(3), 3))
    stop = asyncio.Event()
    run = metered(job_run(log, store, clock), telemetry)

    async def lag() -> dict[int, float]:
        return {
            p: value(
                telemetry,
                "pipeline_consumer_lag_records",
                pipeline_job="ticks",
                topic=TOPIC,
                partition=str(p),
            )
            for p in await log.end_offsets(TOPIC)
        }

    running = asyncio.create_task(run_job(run, stop=stop))
    await eventually_async(lag, lambda lags: sum(lags.values()) == 3)
    await publish(log, Tick("a", at(4), 4), Tick("b", at(5), 5))
    during = await eventually_async(lag, lambda lags: sum(lags.values()) == 5)
    store.down = False
    after = await eventually_async(lag, lambda lags: sum(lags.values()) == 0)
    stop.set()
    await asyncio.wait_for(running, 5)

    ends = await log.end_offsets(TOPIC)
    assert during == {p: float(end) for p, end in ends.items()}  # per partition
    assert after == dict.fromkeys(ends, 0.0)


async def test_the_state_each_step_holds_and_the_windows_it_closes_are_sampled(
    log: InMemoryEventLog, clock: ManualClock
) -> None:
    telemetry = PrometheusTelemetry()
    await publish(log, Tick("a", at(1), 1), Tick("b", at(2), 2), Tick("b", at(65), 3))
    stop = asyncio.Event()
    run = metered(job_run(log, store_for(Sinks()), clock), telemetry)

    def entries() -> float:
        return value(telemetry, "pipeline_state_entries", pipeline_job="ticks", step="counts")

    running = asyncio.create_task(run_job(run, stop=stop))
    await eventually(lambda: entries() == 3)  # a's minute, b's two minutes: open windows
    clock.advance(timedelta(minutes=10))  # quiet long enough: every window closes
    await eventually(lambda: entries() == 0)
    stop.set()
    await asyncio.wait_for(running, 5)

    closed = {"pipeline_job": "ticks", "step": "counts"}
    assert value(telemetry, "pipeline_windows_closed_total", **closed) == 3


class BrokenEndOffsets(InMemoryEventLog):
    async def end_offsets(self, topic: str) -> dict[int, int]:
        raise RuntimeError("a bug in some adapter")


async def test_a_failing_sample_is_logged_and_never_stops_the_sampling() -> None:
    broken = BrokenEndOffsets()
    await broken.ensure_topics([TopicSpec(name=TOPIC, partitions=1)])
    consumer = broken.consumer(group_id="g", topics=[TOPIC])
    await consumer.poll(1, 0.01)  # joins: partition 0 assigned
    sampler = Sampler(log_=broken, store=store_for(Sinks()), interval=0.01)
    sampler.add("g", consumer, PrometheusTelemetry().worker(job="ticks", forwarder=False))
    stop = asyncio.Event()

    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(sampler.run(stop))
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(running, 1)

    failures = [e for e in logs if e["event"].startswith("sampling lag and state failed")]
    assert len(failures) >= 2  # every round tried again
