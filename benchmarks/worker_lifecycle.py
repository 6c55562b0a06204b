"""A worker's start and stop, timed from outside: a benchmark, not a test.

    uv run python benchmarks/worker_lifecycle.py --events 300000 --runs 3
    uv run python benchmarks/worker_lifecycle.py --runs 3 --compare /tmp/other-checkout/src

Produces one backlog of readings into a fresh topic and a throwaway database, then launches
`pipeline-worker sensors --until-caught-up` (a fresh group each run, the tables emptied
before it) `--runs` times and prints, per run: launch → consuming (the worker's log line
"partitions assigned", or "state restored" from a version before it, both logged once the
group has given the worker its partitions and their state is restored: imports, bootstrap,
group join; the worker logs at DEBUG, in JSON, to stderr), launch → first batch committed
in PostgreSQL (then its first fetch and batch too), the last commit → the process's
exit (the `--until-caught-up` stop), launch → exit, the readings/s of the whole run, the
process's CPU seconds and its peak RSS. The commits are read from `consumer_offsets`
(`updated_at`, the database's clock, which is this machine's); the CPU seconds of the
worker's processes are sampled from /proc every 20 ms, so that each wall figure has the CPU
time spent in it beside it (wall time on a shared machine is mostly waiting for a core).
With `--compare SRC`, every run is followed by one of the worker from another checkout's
`src/` (put first on PYTHONPATH), alternating the order each round, so that both see the
same machine; it stores into a throwaway database of its own, migrated by that checkout
(`pipeline db upgrade`), so that two versions whose schemas differ can be compared.
`--processes N` passes `--processes N` to this checkout's worker, `--compare-env NAME=VALUE`
sets a variable for the compared worker only (`--compare src` with it compares a setting).
The topic is deleted at the end (`--keep-topic` keeps it for a later run's `--topic`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from pipeline.adapters.sql.migrate import upgrade
from pipeline.entrypoints.bench import delete_readings_topics
from pipeline.entrypoints.bench_floor import _database, _dsn, _empty, _stored
from pipeline.entrypoints.settings import Settings

TICK = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    """`root` and its descendants (the members of `--processes N`)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _usage(pids: list[int]) -> tuple[float, float]:
    """CPU seconds and peak RSS (MiB, summed) of `pids` so far."""
    cpu, peak = 0.0, 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICK
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak += int(line.split()[1]) / 1024
    return cpu, peak


async def _sample(process: asyncio.subprocess.Process, samples: list[tuple[float, float, float]]):
    """(time, CPU, peak RSS) of the worker's processes every 20 ms while it runs."""
    while process.returncode is None:
        samples.append((time.time(), *_usage(_tree(process.pid))))
        await asyncio.sleep(0.02)


def _at(samples: list[tuple[float, float, float]], moment: float) -> float:
    """CPU seconds of the worker's processes at `moment` (the last sample before it)."""
    return max((cpu for at, cpu, _ in samples if at <= moment), default=0.0)


CONSUMING = ("partitions assigned", "state restored")


def _consuming(stderr: bytes) -> float:
    """The time.time() of the worker's first log line in CONSUMING (or nan)."""
    for line in stderr.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            entry = json.loads(line)
            if entry.get("event") in CONSUMING:
                return datetime.fromisoformat(entry["timestamp"]).timestamp()
    return float("nan")


async def _first_commit(dsn: str, group: str, process: asyncio.subprocess.Process) -> float:
    """Poll for the group's first stored offset; its time.time() (or nan)."""
    conn = await asyncpg.connect(dsn)
    try:
        while process.returncode is None:
            if await conn.fetchval("SELECT 1 FROM consumer_offsets WHERE group_id = $1", group):
                return time.time()
            await asyncio.sleep(0.01)
        return float("nan")
    finally:
        await conn.close()


async def _last_commit(dsn: str, group: str) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        stamp = await conn.fetchval(
            "SELECT max(updated_at) FROM consumer_offsets WHERE group_id = $1", group
        )
        return float(stamp.timestamp())
    finally:
        await conn.close()


async def one_run(
    label: str, command: list[str], env: dict[str, str], dsn: str, db_url: str, events: int
) -> dict[str, float] | None:
    group = f"lifecycle-{uuid.uuid4().hex[:8]}"
    await _empty(db_url)
    launched = time.time()
    process = await asyncio.create_subprocess_exec(
        *command, "--group-id", group, "--until-caught-up",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    samples: list[tuple[float, float, float]] = []
    sampling = asyncio.create_task(_sample(process, samples))
    first = asyncio.create_task(_first_commit(dsn, group, process))
    _, err = await process.communicate()
    exited = time.time()
    first_commit = await first
    await sampling
    if process.returncode != 0:
        sys.stderr.write(err.decode(errors="replace"))
        return None
    if (stored := await _stored(db_url)) != events:
        sys.stderr.write(f"{label}: stored {stored} of {events}\n")
        return None
    last = await _last_commit(dsn, group)
    # The last sample may come after the exit, when /proc no longer has the process.
    cpu, rss = max(c for _, c, _ in samples), max(r for _, _, r in samples)
    return {
        "consuming": (consuming := _consuming(err)) - launched,
        "consuming_cpu": _at(samples, consuming),
        "start": first_commit - launched,
        "start_cpu": _at(samples, first_commit),
        "stop": exited - last,
        "stop_cpu": cpu - _at(samples, last),
        "total": exited - launched,
        "cpu": cpu,
        "rss": rss,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another checkout's src/ to alternate with")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--topic", help="an earlier run's topic holding exactly --events readings (not produced)"
    )
    parser.add_argument(
        "--keep-topic",
        action="store_true",
        help="keep the topic this run produces (deleted by default), for a later run's --topic",
    )
    parser.add_argument(
        "--compare-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable of the compared worker only (repeatable)",
    )
    args = parser.parse_args()
    settings = Settings()
    run_id = uuid.uuid4().hex[:8]
    topic = args.topic or f"bench-lifecycle-{run_id}"
    database = f"pipeline_bench_{run_id}"
    app_url = settings.database.url.get_secret_value()
    await _database(app_url, database)
    db_url = make_url(app_url).set(database=database).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "PIPELINE_TOPICS__SENSOR_READINGS": topic,
        "PIPELINE_DATABASE__URL": db_url,
        "PIPELINE_LOG_LEVEL": "DEBUG",
        "PIPELINE_LOG_FORMAT": "json",
    }
    python = sys.executable
    worker = [python, "-m", "pipeline.entrypoints.worker", "sensors"]
    variants: list[tuple[str, list[str], dict[str, str]]] = [
        ("this", worker + (["--processes", str(args.processes)] if args.processes > 1 else []), env)
    ]
    databases = [database]
    if args.compare is not None:
        # Its own database, migrated by its own checkout: the two may differ in schema.
        databases.append(f"{database}_compared")
        await _database(app_url, databases[-1])
        compared_url = make_url(db_url).set(database=databases[-1])
        compared = {
            **env,
            "PYTHONPATH": str(args.compare),
            "PIPELINE_DATABASE__URL": compared_url.render_as_string(hide_password=False),
            **dict(item.split("=", 1) for item in args.compare_env),
        }
        variants.append(("compare", worker, compared))
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in variants}
    try:
        await asyncio.to_thread(upgrade, db_url)
        if args.compare is not None:
            migrate = await asyncio.create_subprocess_exec(
                python, "-m", "pipeline.entrypoints.cli", "db", "upgrade", env=compared,
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            if await migrate.wait() != 0:
                raise SystemExit("migrating the compared checkout's database failed")
        if args.topic is None:
            produce = await asyncio.create_subprocess_exec(
                python, "-m", "pipeline.entrypoints.cli", "produce", "sensors",
                "--count", str(args.events), "--rate", "0", "--seed", str(int(run_id, 16)),
                env=env, stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            if await produce.wait() != 0:
                raise SystemExit("producing the backlog failed")
        print(f"{args.events:,} readings, topic {topic}; load average {os.getloadavg()[:2]}")
        for n in range(args.runs):
            order = variants if n % 2 == 0 else variants[::-1]
            for label, command, run_env in order:
                url = run_env["PIPELINE_DATABASE__URL"]
                figures = await one_run(label, command, run_env, _dsn(url), url, args.events)
                if figures is None:
                    raise SystemExit(f"{label} run failed")
                results[label].append(figures)
                print(
                    f"  {label:8} launch→consuming {figures['consuming']:4.2f} s "
                    f"(CPU {figures['consuming_cpu']:4.2f} s), "
                    f"→first commit {figures['start']:4.2f} s "
                    f"(CPU {figures['start_cpu']:4.2f} s), last commit→exit "
                    f"{figures['stop']:5.2f} s (CPU {figures['stop_cpu']:4.2f} s), "
                    f"launch→exit {figures['total']:6.2f} s "
                    f"({args.events / figures['total']:,.0f} readings/s), "
                    f"CPU {figures['cpu']:5.1f} s "
                    f"({args.events / figures['cpu']:,.0f} per CPU s), peak RSS "
                    f"{figures['rss']:4.0f} MiB; load {os.getloadavg()[0]:.2f}"
                )
    finally:
        for name in databases:
            await _database(app_url, name, drop=True)
        if args.topic is None and not args.keep_topic:
            await delete_readings_topics(settings, topic)
    for label, runs in results.items():
        median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{label:8} median: consuming {median['consuming']:.2f} s "
            f"(CPU {median['consuming_cpu']:.2f} s), "
            f"first commit {median['start']:.2f} s (CPU {median['start_cpu']:.2f} s), "
            f"stop {median['stop']:.2f} s (CPU {median['stop_cpu']:.2f} s), "
            f"total {median['total']:.2f} s, CPU {median['cpu']:.1f} s, RSS {median['rss']:.0f} MiB"
        )


if __name__ == "__main__":
    asyncio.run(main())
