"""How long a job under database authority takes to get its state back: a benchmark, not a
test.

    eval "$(scripts/stack env)"
    uv run python -m benchmarks.bench_state_restore --keys 1000000

Writes `--keys` window accumulators of a one-minute `Stats` step (the sensors job's state)
into `stream_state` of a throwaway PostgreSQL database through the checkpoint store, in
batches of 10,000 as a worker would, spread over 6 partitions. Then, as a worker restarted
after a SIGKILL does on assignment, loads the state of every partition and hands it to a
fresh `Task`, and processes one batch of new readings: prints the seconds to load, to
restore into the task, and to the first new output.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from tests.databases import fresh_database

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.sql import create_engine
from pipeline.adapters.sql.postgres_checkpoint import PostgresCheckpointStore
from pipeline.adapters.sql.postgres_sinks import postgres_sensor_sinks
from pipeline.application.ports.checkpoint import CheckpointBatch
from pipeline.domain.sensors import Reading
from pipeline.jobs.sensors import WINDOW_STEP, SensorJobConfig, sensor_job
from pipeline.streams import Task, to_millis
from pipeline.streams.aggregates import RunningStats
from pipeline.streams.state import StateChange, dumps

PARTS = 6
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def bench(keys: int) -> None:
    async with fresh_database("bench_restore") as url:
        store = PostgresCheckpointStore(create_engine(url, pool_size=2), postgres_sensor_sinks())
        try:
            stats = RunningStats()
            for reading_value in (20.0, 21.0, 22.5):
                stats.add(reading_value)
            payload = dumps(stats)
            started = time.perf_counter()
            for first in range(0, keys, 10_000):
                changes = [
                    StateChange(
                        WINDOW_STEP,
                        i % PARTS,
                        dumps(((f"sensor-{i:07d}", "temperature"), to_millis(T0))),
                        payload,
                    )
                    for i in range(first, min(first + 10_000, keys))
                ]
                await store.commit(
                    CheckpointBatch(
                        group_id="bench", start_offsets={}, next_offsets={}, state=changes
                    )
                )
            written = time.perf_counter() - started
            clock = ManualClock(T0 + timedelta(minutes=5))
            job = sensor_job(SensorJobConfig(topic="readings"))

            started = time.perf_counter()
            state = await store.load_state("bench", list(range(PARTS)))
            loaded = time.perf_counter()
            task = Task(job.plan())
            for part in range(PARTS):
                task.assign(part, state.get(part, {}), to_millis(clock.now()))
            restored = time.perf_counter()
            reading = Reading(
                sensor_id="sensor-0000000",
                sensor_type="temperature",
                value=23.0,
                unit="celsius",
                timestamp=T0 + timedelta(seconds=30),
                location="lab",
            )
            out = task.process([("readings", 0, reading, None)], to_millis(clock.now()))
            first_output = time.perf_counter()
            [window] = out.values("aggregates_1m")
            assert window.count == 4, window  # the restored accumulator took the new reading
            print(
                f"{task.state_size():,} keys restored (written in {written:.1f} s): "
                f"load {loaded - started:.2f} s, into the task {restored - loaded:.2f} s, "
                f"first new output {first_output - started:.2f} s after the restart began"
            )
        finally:
            await store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    asyncio.run(bench(parser.parse_args().keys))


if __name__ == "__main__":
    main()
