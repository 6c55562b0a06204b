"""Horizontal scaling on the three-broker stack: workers of one consumer group share the six
partitions of a stream of 100,000 readings; one is SIGKILLed mid-stream and later restarted,
one more joins: every reading is stored exactly once, and no worker exits on its own.

Marked `slow` (`uv run pytest -m slow`). The throughput of 1, 2 and 3 workers is a benchmark:
`benchmarks/scaling.py`."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import asyncpg
import pytest

from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings
from tests.integration.streams import (
    Progress,
    Report,
    libpq_url,
    start_producer,
    start_worker,
    stop,
    until_group_members,
)
from tests.services import require_cluster

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

READINGS = 100_000
RATE = 2_500.0


async def test_workers_killed_restarted_and_added_mid_stream_store_every_reading_once(
    settings: Settings, tmp_path: Path
) -> None:
    require_cluster()
    pipeline = await bootstrap(settings)
    try:
        await pipeline.ensure_topics()
    finally:
        await pipeline.aclose()
    database = await asyncpg.connect(libpq_url(settings))
    progress = Progress(database, settings.topics.sensor_readings_partitions)
    started = time.monotonic()
    workers = {name: await start_worker(settings, tmp_path / f"{name}.json") for name in "ABC"}
    producer = None
    try:
        # Each step waits for the group to show it: a worker is killed, restarted or added
        # once it runs, never while it is still starting.
        await until_group_members(settings, 3)
        producer = await start_producer(settings, count=READINGS, rate=RATE)
        await progress.until(25_000, timeout=180)
        workers["B"].send_signal(signal.SIGKILL)
        assert await workers.pop("B").wait() == -signal.SIGKILL
        await until_group_members(settings, 2)
        await progress.until(50_000, timeout=180)
        workers["B2"] = await start_worker(settings, tmp_path / "B2.json")
        await until_group_members(settings, 3)
        await progress.until(70_000, timeout=180)
        workers["D"] = await start_worker(settings, tmp_path / "D.json")
        await until_group_members(settings, 4)
        assert await asyncio.wait_for(producer.wait(), 240) == 0
        await progress.until(READINGS, timeout=240)
        assert all(w.returncode is None for w in workers.values()), "a worker exited"
        exits = [await stop(worker) for worker in workers.values()]
        stored, aggregated = await progress.stored(), await progress.aggregated()
    finally:
        for process in (producer, *workers.values()):
            if process is not None and process.returncode is None:
                process.kill()
        await database.close()
    assert exits == [0, 0, 0, 0]
    assert stored == READINGS
    assert aggregated == READINGS
    Report().add(
        "workers A, B, C; B killed at 25%, restarted at 50%; D added at 70%",
        readings=READINGS,
        rate_per_s=RATE,
        elapsed_s=round(time.monotonic() - started, 1),
    )
