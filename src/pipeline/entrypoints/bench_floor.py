"""`pipeline bench sensors --floor RUNS`: the sensors worker against the floor — the fastest
honest minimal script doing its work (`benchmarks/floor_sensors.py`) — alternately, on one
backlog, as whole processes. A benchmark that prints figures, not a test.

One backlog of N readings is produced into a fresh topic; then, RUNS times each and in
alternating order, the tables of a throwaway database are emptied and one of the two is
launched with a fresh consumer group and timed from launch to exit (`pipeline-worker sensors
--until-caught-up`, and the floor with the same stop condition). Start-up, the group join and
the exit are part of the figure, as they are of a user's run. It prints every run, the
medians and their ratio (floor time / worker time: the share of the floor's speed the worker
reaches). The floor script lives in the repository's `benchmarks/`, so this needs a source
checkout."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from pipeline.adapters.sql.migrate import upgrade
from pipeline.adapters.sql.tables import metadata
from pipeline.entrypoints.bench import delete_readings_topics
from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from pipeline.entrypoints.settings import Settings

FLOOR = Path(__file__).resolve().parents[3] / "benchmarks" / "floor_sensors.py"
ADMIN_URL = "PIPELINE_STACK_PG_ADMIN_URL"


def _fail(message: str) -> int:
    sys.stderr.write(f"pipeline bench: error: {message}\n")
    return EXIT_USAGE


async def _database(app_url: str, name: str, *, drop: bool = False) -> None:
    """Create (or drop) database `name`, owned by the application's user, as the stack's
    administrator (PIPELINE_STACK_PG_ADMIN_URL) or else as the application's user."""
    url = make_url(app_url)
    admin = os.environ.get(ADMIN_URL) or url.set(
        drivername="postgresql", database="postgres"
    ).render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        if drop:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            await conn.execute(f'CREATE DATABASE "{name}" OWNER "{url.username}"')
    finally:
        await conn.close()


def _dsn(db_url: str) -> str:
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _empty(db_url: str) -> None:
    """Empty the application's tables that the database has (one migrated by another
    checkout may lack the newest)."""
    conn = await asyncpg.connect(_dsn(db_url))
    try:
        present = await conn.fetch(
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename = ANY($1::text[])",
            list(metadata.tables),
        )
        await conn.execute(f"TRUNCATE {', '.join(row[0] for row in present)}")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def _stored(db_url: str) -> int:
    conn = await asyncpg.connect(_dsn(db_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM readings"))
    finally:
        await conn.close()


async def _timed(command: list[str], env: dict[str, str]) -> float | None:
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    elapsed = time.monotonic() - started
    if process.returncode != 0:
        sys.stderr.write(err.decode(errors="replace"))
        return None
    return elapsed


async def _alternate(
    args: argparse.Namespace, env: dict[str, str], db_url: str, topic: str, run_id: str
) -> dict[str, list[float]] | None:
    """Produce the backlog, then time the worker and the floor alternately; None (with the
    reason on stderr) if a run failed or did not store the whole backlog."""
    python = sys.executable
    produce = [
        python, "-m", "pipeline.entrypoints.cli", "produce", "sensors",
        "--count", str(args.events), "--rate", "0", "--sensors", str(args.sensors),
        "--seed", str(int(run_id, 16)),
    ]  # fmt: skip
    if await _timed(produce, env) is None:
        return None
    times: dict[str, list[float]] = {"worker": [], "floor": []}
    for n in range(args.floor * 2):
        # Alternating, and the order flipped each round: worker, floor, floor, worker, …
        kind = ("worker", "floor")[(n + n // 2) % 2]
        group = f"bench-floor-{run_id}-{n}"
        command = (
            [python, "-m", "pipeline.entrypoints.worker", "sensors", "--group-id", group,
             "--until-caught-up"]
            if kind == "worker"
            else [python, str(FLOOR), "--topic", topic, "--group", group, "--until-caught-up"]
        )  # fmt: skip
        await _empty(db_url)
        elapsed = await _timed(command, env)
        if elapsed is None:
            return None
        # A run counts only if it stored the whole backlog.
        if (stored := await _stored(db_url)) != args.events:
            sys.stderr.write(
                f"pipeline bench: error: the {kind} stored {stored} of {args.events} readings\n"
            )
            return None
        times[kind].append(elapsed)
        print(f"  {kind:6} run {len(times[kind])}: {elapsed:6.2f} s, "
              f"{args.events / elapsed:,.0f} readings/s")  # fmt: skip
    return times


async def run_floor_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Produce the backlog, then run the worker and the floor alternately `args.floor`
    times each; print the runs, the medians and the ratio."""
    if settings.kafka.bootstrap_servers is None or settings.database.is_default:
        return _fail(
            "needs real Kafka and PostgreSQL; set PIPELINE_KAFKA__BOOTSTRAP_SERVERS and "
            'PIPELINE_DATABASE__URL (eval "$(scripts/stack env)")'
        )
    if not FLOOR.is_file():
        return _fail(f"--floor runs {FLOOR}, which only a source checkout has")
    run_id = uuid.uuid4().hex[:8]
    topic, database = f"bench-floor-{run_id}", f"pipeline_bench_{run_id}"
    app_url = settings.database.url.get_secret_value()
    try:
        await _database(app_url, database)
    except (OSError, asyncpg.PostgresError) as exc:
        return _fail(f"cannot create the benchmark's database {database}: {exc}")
    db_url = make_url(app_url).set(database=database).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "PIPELINE_TOPICS__SENSOR_READINGS": topic,
        "PIPELINE_DATABASE__URL": db_url,
        "PIPELINE_LOG_LEVEL": "WARNING",
    }
    try:
        await asyncio.to_thread(upgrade, db_url)
        times = await _alternate(args, env, db_url, topic, run_id)
    finally:
        await _database(app_url, database, drop=True)
        await delete_readings_topics(settings, topic)
    if times is None:
        return EXIT_FAILURE
    worker, floor = statistics.median(times["worker"]), statistics.median(times["floor"])
    load1, load5, _ = os.getloadavg()
    print(
        f"pipeline bench sensors --floor: {args.events:,} readings, {args.floor} runs each, "
        f"whole processes (launch → exit)\n"
        f"  machine: {os.cpu_count()} cores, load average {load1:.2f} {load5:.2f}\n"
        f"  worker median {worker:.2f} s ({args.events / worker:,.0f} readings/s), "
        f"floor median {floor:.2f} s ({args.events / floor:,.0f} readings/s)\n"
        f"  ratio (floor time / worker time): {floor / worker:.2f}"
    )
    return EXIT_OK
