"""Throughput of 1, 2, 3 … `pipeline-worker sensors` processes in one consumer group.

A benchmark that prints figures, not a test. For each worker count: a fresh database and
topic (six partitions), a backlog of N readings produced first (`pipeline produce sensors
--rate 0`), then the workers start together and drain it into PostgreSQL. Throughput is N over
the time from the first reading stored to the last (process start-up and the group's first
rebalance excluded; both are printed).

    scripts/cluster-stack up && eval "$(scripts/cluster-stack env)"
    uv run python benchmarks/scaling.py --events 100000 --workers 1 2 3

On a machine with fewer cores than workers plus Kafka and PostgreSQL, the figures show how
the work divides between the workers, not a speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from pipeline.adapters.sql.migrate import upgrade

PYTHON = sys.executable
STALL_S = 120.0
"""A run that stores nothing for this long has stopped: it fails instead of waiting."""


def env_for(database: str, run: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_DATABASE__URL"}
    env |= {
        "PIPELINE_DATABASE__URL": database,
        "PIPELINE_TOPICS__SENSOR_READINGS": f"scaling-{run}",
        "PIPELINE_WORKER__GROUP_ID_PREFIX": f"scaling-{run}",
        "PIPELINE_LOG_LEVEL": "WARNING",
    }
    return env


async def fresh_database(run: str) -> tuple[str, str]:
    """(asyncpg SQLAlchemy URL, libpq URL) of a new database migrated to the newest revision."""
    app = make_url(os.environ["PIPELINE_DATABASE__URL"])
    name = f"scaling_{run}"
    admin = await asyncpg.connect(os.environ["PIPELINE_STACK_PG_ADMIN_URL"])
    try:
        await admin.execute(f'CREATE DATABASE "{name}" OWNER "{app.username}"')
    finally:
        await admin.close()
    url = app.set(database=name)
    await asyncio.to_thread(upgrade, url.render_as_string(hide_password=False))
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return url.render_as_string(hide_password=False), libpq


async def drop_database(run: str) -> None:
    admin = await asyncpg.connect(os.environ["PIPELINE_STACK_PG_ADMIN_URL"])
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "scaling_{run}" WITH (FORCE)')
    finally:
        await admin.close()


async def measure(workers: int, events: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    database, libpq = await fresh_database(run)
    env = env_for(database, run)
    try:
        producer = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "pipeline.entrypoints.cli", "produce", "sensors",
            "--count", str(events), "--rate", "0", "--sensors", "1000",
            "--seed", str(int(run, 16)), env=env, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        if await producer.wait() != 0:
            raise SystemExit("the producer failed")
        connection = await asyncpg.connect(libpq)
        started = time.monotonic()
        processes = [
            await asyncio.create_subprocess_exec(
                PYTHON, "-m", "pipeline.entrypoints.worker", "sensors", env=env
            )
            for _ in range(workers)
        ]
        first = None
        last, moved = 0, time.monotonic()
        try:
            while (stored := await connection.fetchval("SELECT count(*) FROM readings")) < events:
                if stored and first is None:
                    first = time.monotonic()
                if any(p.returncode is not None for p in processes):
                    raise SystemExit("a worker exited")
                if stored != last:
                    last, moved = stored, time.monotonic()
                elif time.monotonic() - moved > STALL_S:
                    raise SystemExit(
                        f"{workers} workers: no reading stored for {STALL_S:.0f} s, "
                        f"{stored:,} of {events:,} stored"
                    )
                await asyncio.sleep(0.1)
            done = time.monotonic()
        finally:
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            await asyncio.gather(*(p.wait() for p in processes))
            await connection.close()
    finally:
        await drop_database(run)
    first = first or started
    return {
        "workers": workers,
        "start_to_first_row_s": first - started,
        "drain_s": done - first,
        "readings_per_s": events / (done - first),
        "end_to_end_per_s": events / (done - started),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    for name in (
        "PIPELINE_KAFKA__BOOTSTRAP_SERVERS",
        "PIPELINE_DATABASE__URL",
        "PIPELINE_STACK_PG_ADMIN_URL",
    ):
        if name not in os.environ:
            raise SystemExit(f'{name} is not set: eval "$(scripts/stack env)"')
    brokers = os.environ.get("PIPELINE_STACK_KAFKA_BROKERS", "?")
    print(
        f"scaling: {args.events:,} readings backlog, 6 partitions, {brokers} broker(s), "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start"
    )
    print("workers  start→first row  drain    readings/s  end to end/s")
    for count in args.workers:
        figures = await measure(count, args.events)
        print(
            f"{count:>7}  {figures['start_to_first_row_s']:>13.1f}s  {figures['drain_s']:>5.1f}s"
            f"  {figures['readings_per_s']:>10,.0f}  {figures['end_to_end_per_s']:>12,.0f}"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
