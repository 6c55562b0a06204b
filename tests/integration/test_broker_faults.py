"""Fault tests on the three-broker stack (`scripts/stack up --brokers 3`), each with a stream
of 100,000 readings and a worker running: the partition leaders' broker SIGKILLed mid-stream
and restarted; a broker SIGKILLed and left down; the controller quorum's leader SIGKILLed.
Every reading is stored exactly once, the worker never exits, and the time from the kill to
the stream flowing again (every partition storing readings produced after the kill) is
measured and reported (printed, and kept in artifacts/cluster-faults.json).

Marked `slow`: the default run deselects them; `uv run pytest -m slow` runs them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings
from tests.cluster_nodes import (
    healthy,
    kill_node,
    partition_leaders,
    quorum_leader,
    restart_stack,
)
from tests.integration.streams import (
    Progress,
    Report,
    libpq_url,
    recovery_after,
    start_producer,
    start_worker,
    stop,
)
from tests.services import require_cluster

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

READINGS = 100_000
RATE = 2_500.0
"""Readings per second: a stream below the worker's capacity, so that a stall shows."""
KILL_AFTER = 30_000
LIVE_S = 10.0
"""The worker counts as keeping up while the newest reading it stored is at most this old
(its latency under load); the kill happens then, with the producer still running."""
DOWN_S = 20.0
"""How long a killed broker stays down before it is restarted (when it is)."""

REPORT = Report()


@pytest.fixture
def cluster() -> Iterator[str]:
    """The three-broker stack; whatever a test killed is restarted afterwards."""
    yield require_cluster()
    restart_stack()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The worker with the application's own consumer and batch settings (the shared fixture
    shortens them for small tests; here brokers die, not workers)."""
    return settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"options": {}}),
            "worker": settings.worker.model_copy(
                update={"batch_size": 10_000, "batch_timeout": 0.5}
            ),
        }
    )


async def leaders_on_one_broker(settings: Settings, broker: int) -> None:
    """Create the readings topic with `broker` the preferred leader of every partition (the
    others replicas), then the application's other topics."""
    others = [b for b in (1, 2, 3) if b != broker]
    admin = AdminClient({"bootstrap.servers": require_cluster()})
    topic = NewTopic(
        settings.topics.sensor_readings,
        num_partitions=settings.topics.sensor_readings_partitions,
        replica_assignment=[[broker, *others]] * settings.topics.sensor_readings_partitions,
        config={"min.insync.replicas": "2"},
    )
    admin.create_topics([topic])[settings.topics.sensor_readings].result()
    await asyncio.to_thread(
        healthy, require_cluster(), settings.topics.sensor_readings, leader=broker
    )
    pipeline = await bootstrap(settings)
    try:
        await pipeline.ensure_topics()
    finally:
        await pipeline.aclose()


async def run_fault(
    settings: Settings,
    tmp_path: Path,
    *,
    name: str,
    victim: int | None,
    restart_after: float | None,
) -> None:
    """Stream READINGS readings through a worker, SIGKILL broker `victim` (None: the quorum
    leader at that moment) once KILL_AFTER are stored, restart it `restart_after` s later
    (None: leave it down), and check and report."""
    database = await asyncpg.connect(libpq_url(settings))
    progress = Progress(database, settings.topics.sensor_readings_partitions)
    worker = await start_worker(settings, tmp_path / "worker.json")
    producer = await start_producer(settings, count=READINGS, rate=RATE)
    restarted: asyncio.Task[None] | None = None
    try:
        await progress.live(KILL_AFTER, within_s=LIVE_S, timeout=120, producer=producer)
        lag_before = await progress.lag_s()
        node = victim if victim is not None else await asyncio.to_thread(quorum_leader)
        leaders_before = partition_leaders(require_cluster(), settings.topics.sensor_readings)
        if victim is not None:
            assert set(leaders_before.values()) == {victim}, leaders_before
        killed_at = await asyncio.to_thread(kill_node, node)
        if restart_after is not None:

            async def restart() -> None:
                await asyncio.sleep(restart_after)
                await asyncio.to_thread(restart_stack)

            restarted = asyncio.create_task(restart())
        recovery = await recovery_after(progress, killed_at)
        assert await asyncio.wait_for(producer.wait(), 240) == 0
        await progress.until(READINGS, timeout=240)
        if restarted is not None:
            await restarted
        assert worker.returncode is None, "the worker exited"
        assert await stop(worker) == 0
        stored, aggregated = await progress.stored(), await progress.aggregated()
    finally:
        for process in (producer, worker):
            if process.returncode is None:
                process.kill()
        await database.close()
    assert stored == READINGS
    assert aggregated == READINGS  # each reading counted once in its window
    REPORT.add(
        name,
        killed_broker=node,
        partitions_it_led=sum(1 for leader in leaders_before.values() if leader == node),
        kill_to_flowing_s=round(recovery, 1),
        latency_before_kill_s=round(lag_before or 0.0, 1),
        restarted_after_s=restart_after,
        readings=READINGS,
        rate_per_s=RATE,
        load_average=round(os.getloadavg()[0], 2),
    )


async def test_the_leaders_broker_killed_mid_stream_then_restarted(
    cluster: str, settings: Settings, tmp_path: Path
) -> None:
    await leaders_on_one_broker(settings, broker=2)

    await run_fault(
        settings, tmp_path, name="leaders' broker killed, restarted", victim=2, restart_after=DOWN_S
    )


async def test_a_broker_killed_and_left_down(
    cluster: str, settings: Settings, tmp_path: Path
) -> None:
    await leaders_on_one_broker(settings, broker=3)

    await run_fault(
        settings, tmp_path, name="broker killed, left down", victim=3, restart_after=None
    )


async def test_the_controller_quorums_leader_killed(
    cluster: str, settings: Settings, tmp_path: Path
) -> None:
    pipeline = await bootstrap(settings)
    try:
        await pipeline.ensure_topics()
    finally:
        await pipeline.aclose()
    await asyncio.to_thread(healthy, require_cluster(), settings.topics.sensor_readings)

    await run_fault(
        settings,
        tmp_path,
        name="quorum leader killed, restarted",
        victim=None,
        restart_after=DOWN_S,
    )
