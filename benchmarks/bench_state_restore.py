"""How long a job under database authority takes to get its state back: a benchmark, not a
test.

    eval "$(scripts/stack env)"
    uv run python -m benchmarks.bench_state_restore --keys 1000000 --runs 3

Writes `--keys` window accumulators of a one-minute `Stats` step (the sensors job's state)
into a throwaway PostgreSQL database through the checkpoint store (its state log, folded
into `stream_state` in the background as the commits go), in batches of 10,000 as a worker
would, spread over 6 partitions. Then, `--runs` times, does what a worker restarted after a
SIGKILL does on assignment, with a new engine (new connections) and a new `Task`: loads the
state of every partition, hands it to the task, processes one new reading (on a key of the
state: its restored accumulator takes it) and commits that batch's rows, state and offset:
the first new output. Prints, per run, the seconds to load, to restore into the task, and
from the start of the restart to the first new output committed (wall clock, and this
process's CPU: the machine is shared, so the wall clock depends on what else runs), and the
load average when the run began.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

from tests.databases import fresh_database

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.sql import create_engine
from pipeline.adapters.sql.postgres_checkpoint import PostgresCheckpointStore
from pipeline.adapters.sql.postgres_sinks import postgres_sensor_sinks
from pipeline.application.ports import Record, TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkRows
from pipeline.domain.sensors import Reading
from pipeline.jobs.sensors import WINDOW_STEP, SensorJobConfig, sensor_job
from pipeline.streams import Task, to_millis
from pipeline.streams.aggregates import RunningStats
from pipeline.streams.state import StateChange, dumps

PARTS = 6
TOPIC = "readings"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def write_state(url: str, keys: int) -> float:
    """Commit `keys` window accumulators as group "bench"'s state; the seconds it took."""
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
                CheckpointBatch(group_id="bench", start_offsets={}, next_offsets={}, state=changes)
            )
        return time.perf_counter() - started
    finally:
        await store.close()
        await store.engine.dispose()


async def restart(url: str, run: int) -> str:
    """One restart: restore every partition, then process and commit one new reading."""
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    store = PostgresCheckpointStore(create_engine(url, pool_size=2), postgres_sensor_sinks())
    try:
        clock = ManualClock(T0 + timedelta(minutes=5))
        task = Task(sensor_job(SensorJobConfig(topic=TOPIC)).plan())
        state = await store.load_state("bench", list(range(PARTS)))
        loaded = time.perf_counter()
        for part in range(PARTS):
            task.assign(part, state.get(part, {}), to_millis(clock.now()))
        del state
        restored = time.perf_counter()
        # Sensor `run * PARTS` is in partition 0 and not yet touched by an earlier run.
        reading = Reading(
            sensor_id=f"sensor-{run * PARTS:07d}",
            sensor_type="temperature",
            value=23.0,
            unit="celsius",
            timestamp=T0 + timedelta(seconds=30),
            location="lab",
        )
        origin = Record(topic=TOPIC, partition=0, offset=run, key=None, value=None, timestamp_ms=0)
        out = task.process([(TOPIC, 0, reading, origin)], to_millis(clock.now()))
        [window] = out.values("aggregates_1m")
        assert window.count == 4, window  # the restored accumulator took the new reading
        tp = TopicPartition(TOPIC, 0)
        await store.commit(
            CheckpointBatch(
                group_id="bench",
                start_offsets={tp: run},
                next_offsets={tp: run + 1},
                writes=[
                    SinkRows(
                        sink=sink,
                        rows=[i.value for i in items],
                        parts=[i.part for i in items],
                        origins=[i.origin if isinstance(i.origin, Record) else None for i in items],
                    )
                    for sink, items in out.sinks.items()
                    if items
                ],
                state=task.changes(),
            )
        )
        committed = time.perf_counter()
        return (
            f"run {run + 1} (load average {load:.1f}): {task.state_size():,} keys; "
            f"load {loaded - wall:.2f} s, into the task {restored - loaded:.2f} s, "
            f"first new output committed {committed - wall:.2f} s after the restart began "
            f"({time.process_time() - cpu:.2f} s of this process's CPU)"
        )
    finally:
        await store.close()
        await store.engine.dispose()


async def bench(keys: int, runs: int) -> None:
    async with fresh_database("bench_restore") as url:
        written = await write_state(url, keys)
        print(f"{keys:,} keys written in {written:.1f} s")
        for run in range(runs):
            print(await restart(url, run), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(bench(args.keys, args.runs))


if __name__ == "__main__":
    main()
