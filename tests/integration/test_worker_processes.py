"""`pipeline-worker sensors --processes 2` on the real stack: two members of one group share
the partitions, each stores its own, and every reading is stored once."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings
from tests.integration.conftest import settings_env
from tests.integration.streams import UNDESCRIBED
from tests.integration.topics import assert_stored_offsets_at_ends

pytestmark = pytest.mark.integration

COUNT = 3_000


async def until_partitions_divided(settings: Settings, members: int, partitions: int) -> None:
    """Wait until the sensors group has `members` members, each assigned some of the
    readings topic's `partitions` partitions and all of them assigned."""
    group = f"{settings.worker.group_id_prefix}-sensors"
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers or ""})

    def assignments() -> list[set[int]]:
        try:
            described = admin.describe_consumer_groups([group])[group].result(timeout=20)
        except KafkaException as exc:
            if exc.args[0].code() in UNDESCRIBED:
                return []
            raise
        return [
            {tp.partition for tp in member.assignment.topic_partitions}
            for member in described.members
        ]

    deadline = time.monotonic() + 120
    while True:
        found = await asyncio.to_thread(assignments)
        if len(found) == members and all(found) and set().union(*found) == set(range(partitions)):
            return
        assert time.monotonic() < deadline, f"group {group}: assignments {found}"
        await asyncio.sleep(0.2)


def stopped_members(stderr: bytes) -> list[int]:
    """The records each member counted, from its `worker stopped` log line (JSON)."""
    counts = []
    for line in stderr.decode().splitlines():
        if line.startswith("{") and (entry := json.loads(line)).get("event") == "worker stopped":
            counts.append(entry["records"])
    return counts


async def test_two_processes_share_the_partitions_and_store_every_reading_once(
    settings: Settings, tmp_path: Path
) -> None:
    pipeline = await bootstrap(settings)
    topic = settings.topics.sensor_readings
    stats = tmp_path / "stats.json"
    env = settings_env(settings) | {"PIPELINE_LOG_LEVEL": "INFO", "PIPELINE_LOG_FORMAT": "json"}
    try:
        await pipeline.ensure_topics()
        partitions = len(await pipeline.log.end_offsets(topic))
        supervisor = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pipeline.entrypoints.worker", "sensors",
            "--processes", "2", "--stats-json", str(stats),
            env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        # Produced once both members hold partitions, so that each has readings to store.
        await until_partitions_divided(settings, members=2, partitions=partitions)
        sent = await produce_sensors(pipeline, count=COUNT, rate=0, seed=3, sensors=40)
        assert sent == COUNT
        async with asyncio.timeout(120):
            while await pipeline.store.count_readings() < COUNT:
                await asyncio.sleep(0.1)

        supervisor.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(supervisor.communicate(), 60)

        assert supervisor.returncode == 0, stderr.decode()[-2000:]
        per_member = stopped_members(stderr)
        assert len(per_member) == 2
        assert all(records > 0 for records in per_member), per_member
        assert sum(per_member) == COUNT
        assert json.loads(stats.read_text())["records"] == COUNT
        assert await pipeline.store.count_readings() == COUNT
        await assert_stored_offsets_at_ends(pipeline, "sensors", topic)
    finally:
        await pipeline.aclose()
