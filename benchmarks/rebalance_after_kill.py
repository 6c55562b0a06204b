"""How long the partitions of a SIGKILLed worker stay still: two `pipeline-worker sensors`
processes share a consumer group while readings stream in; one is SIGKILLed, and the time
until every partition it owned has its offsets stored again (by the survivor, or by the
killed worker restarted at once) is measured from the database.

    eval "$(scripts/stack env)"
    uv run python benchmarks/rebalance_after_kill.py                  # kill, no restart
    uv run python benchmarks/rebalance_after_kill.py --restart        # kill, restart at once
    uv run python benchmarks/rebalance_after_kill.py --restart --static   # with instance ids

Every run uses topics, a consumer group and a database of its own on the shared stack.
`--env KEY=VALUE` passes settings to the workers (e.g. PIPELINE_KAFKA__OPTIONS to compare
session timeouts).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Mapping

import asyncpg
from confluent_kafka.admin import AdminClient
from sqlalchemy.engine import make_url

from pipeline.adapters.sql.migrate import upgrade
from pipeline.application.ports import TopicPartition
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings

PARTITIONS = 6


def stack(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f'{name} is not set: eval "$(scripts/stack env)" first')
    return value


async def fresh_database() -> str:
    """A new database on the stack's PostgreSQL, migrated; its URL."""
    app = make_url(stack("PIPELINE_DATABASE__URL"))
    name = f"rebalance_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(stack("PIPELINE_STACK_PG_ADMIN_URL"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" OWNER "{app.username}"')
    finally:
        await admin.close()
    url = app.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    return url


def owners(admin: AdminClient, group: str) -> dict[str, set[int]]:
    """Which partitions each member (by client id) of `group` holds, per the broker."""
    [future] = admin.describe_consumer_groups([group], request_timeout=10).values()
    held: dict[str, set[int]] = {}
    for member in future.result().members:
        partitions = member.assignment.topic_partitions if member.assignment else []
        held.setdefault(member.client_id, set()).update(p.partition for p in partitions)
    return held


async def stored(pipeline: Pipeline, group: str, topic: str) -> dict[int, int]:
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    offsets = await pipeline.store.stored_offsets(group, partitions)
    return {tp.partition: offset for tp, offset in offsets.items()}


async def run(args: argparse.Namespace) -> float:
    run_id = uuid.uuid4().hex[:8]
    database = await fresh_database()
    servers = stack("PIPELINE_KAFKA__BOOTSTRAP_SERVERS")
    topic, prefix = f"rebalance-{run_id}", f"rebalance-{run_id}"
    group = f"{prefix}-sensors"
    topics = {
        "sensor_readings": topic,
        **{
            name: f"{topic}-{name}"
            for name in ("system_alerts", "ecommerce_events", "transactions", "social_posts")
        },
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env |= {
        "PIPELINE_KAFKA__BOOTSTRAP_SERVERS": servers,
        "PIPELINE_DATABASE__URL": database,
        "PIPELINE_REGISTRY__URL": stack("PIPELINE_REGISTRY__URL"),
        **{f"PIPELINE_TOPICS__{name.upper()}": value for name, value in topics.items()},
        "PIPELINE_WORKER__GROUP_ID_PREFIX": prefix,
        "PIPELINE_WORKER__BATCH_SIZE": "500",
        "PIPELINE_LOG_LEVEL": "WARNING",
    }
    env |= dict(item.split("=", 1) for item in args.env)
    settings = Settings.model_validate(
        {
            "kafka": {"bootstrap_servers": servers},
            "database": {"url": database},
            "registry": {"url": env["PIPELINE_REGISTRY__URL"]},
            "topics": topics,
            "worker": {"group_id_prefix": prefix},
        }
    )
    pipeline = await bootstrap(settings)
    quiet: dict[str, object] = {"logger": logging.getLogger("benchmark")}
    admin = AdminClient({"bootstrap.servers": servers, **quiet})  # type: ignore[dict-item]
    stop = asyncio.Event()
    producer = asyncio.create_task(
        produce_sensors(pipeline, count=None, rate=args.rate, seed=7, sensors=60, stop=stop)
    )

    async def start(name: str) -> asyncio.subprocess.Process:
        own: Mapping[str, str] = {"PIPELINE_KAFKA__CLIENT_ID": name}
        if args.static:
            own = {**own, "PIPELINE_WORKER__INSTANCE_ID": name}
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pipeline.entrypoints.worker", "sensors", env={**env, **own}
        )

    workers = {name: await start(name) for name in ("worker-a", "worker-b")}
    try:
        deadline = time.monotonic() + 180
        while True:
            held = await asyncio.to_thread(owners, admin, group)
            flowing = await stored(pipeline, group, topic)
            if len(held) == 2 and all(held.values()) and len(flowing) == PARTITIONS:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the group did not settle: {held}, {flowing}")
            await asyncio.sleep(0.5)
        await asyncio.sleep(args.settle)
        victim = held["worker-b"]
        workers["worker-b"].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        if args.restart:
            workers["worker-b2"] = await start("worker-b")
        # The killed worker's last transaction is committed or rolled back by now: offsets
        # that move from here on were stored by another process.
        await asyncio.sleep(1.0)
        before = await stored(pipeline, group, topic)
        while True:
            now = await stored(pipeline, group, topic)
            if all(now[p] > before[p] for p in victim):
                return time.monotonic() - killed_at
            if time.monotonic() - killed_at > 180:
                raise SystemExit(f"partitions {sorted(victim)} did not flow again in 180 s")
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await producer
        for process in workers.values():
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                await process.wait()
        await pipeline.aclose()
        postgres = await asyncpg.connect(stack("PIPELINE_STACK_PG_ADMIN_URL"))
        try:
            name = make_url(database).database
            await postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await postgres.close()
        admin.delete_topics([spec.name for spec in pipeline.topic_specs()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restart", action="store_true", help="restart the killed worker")
    parser.add_argument("--static", action="store_true", help="give workers instance ids")
    parser.add_argument("--rate", type=float, default=600.0, help="readings per second")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the kill")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for workers")
    args = parser.parse_args()
    results = []
    for number in range(1, args.runs + 1):
        seconds = asyncio.run(run(args))
        results.append(seconds)
        print(f"run {number}: partitions of the killed worker flowing again after {seconds:.1f} s")
    scenario = ("kill + restart at once" if args.restart else "kill, no restart") + (
        ", static membership" if args.static else ""
    )
    print(
        f"{scenario}: median {statistics.median(results):.1f} s, "
        f"min {min(results):.1f} s, max {max(results):.1f} s over {len(results)} runs"
    )


if __name__ == "__main__":
    main()
