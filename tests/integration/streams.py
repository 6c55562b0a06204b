"""A stream of readings through real processes, for the fault and scaling tests: the
producer (`pipeline produce sensors` at a fixed rate) and workers (`pipeline-worker sensors`)
as subprocesses, and what PostgreSQL shows of their progress."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from sqlalchemy.engine import make_url

from pipeline.entrypoints.settings import Settings
from tests.integration.conftest import settings_env

PYTHON = sys.executable
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def libpq_url(settings: Settings) -> str:
    url = make_url(settings.database.url.get_secret_value()).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def start_producer(
    settings: Settings, *, count: int, rate: float, sensors: int = 200, seed: int = 11
) -> asyncio.subprocess.Process:
    """`pipeline produce sensors` at `rate` readings/s (event time follows the clock)."""
    return await asyncio.create_subprocess_exec(
        PYTHON, "-m", "pipeline.entrypoints.cli", "produce", "sensors",
        "--count", str(count), "--rate", str(rate), "--sensors", str(sensors),
        "--seed", str(seed),
        env=settings_env(settings), stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def start_worker(settings: Settings, stats: Path) -> asyncio.subprocess.Process:
    """`pipeline-worker sensors`, until told to stop (SIGTERM), its counters to `stats`."""
    env = settings_env(settings) | {
        "PIPELINE_LOG_LEVEL": os.environ.get("FAULT_LOG_LEVEL", "WARNING")
    }
    return await asyncio.create_subprocess_exec(
        PYTHON, "-m", "pipeline.entrypoints.worker", "sensors", "--stats-json", str(stats),
        env=env,
    )  # fmt: skip


async def stop(process: asyncio.subprocess.Process) -> int:
    """SIGTERM (finish the batch, commit, close) and the exit code."""
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 60)


UNDESCRIBED = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.GROUP_ID_NOT_FOUND,
}


async def until_group_members(settings: Settings, count: int, timeout: float = 180) -> None:
    """Wait until the sensors workers' consumer group has `count` members: a worker started
    has joined it (a process starting on a loaded machine may take many seconds to), or one
    killed has been expelled."""
    group = f"{settings.worker.group_id_prefix}-sensors"
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers or ""})

    def members() -> int | None:
        try:
            described = admin.describe_consumer_groups([group])[group].result(timeout=20)
        except KafkaException as exc:
            # The group's coordinator is moving or loading, or the group has no member yet.
            if exc.args[0].code() in UNDESCRIBED:
                return None
            raise
        return len(described.members)

    deadline = time.monotonic() + timeout
    while (found := await asyncio.to_thread(members)) != count:
        assert time.monotonic() < deadline, f"group {group} has {found} members, not {count}"
        await asyncio.sleep(0.5)


@dataclass
class Progress:
    """What the readings table shows while a stream runs."""

    database: asyncpg.Connection
    partitions: int

    async def stored(self) -> int:
        return int(await self.database.fetchval("SELECT count(*) FROM readings"))

    async def aggregated(self) -> int:
        return int(
            await self.database.fetchval(
                "SELECT coalesce(sum(count), 0) FROM reading_aggregates_1m"
            )
        )

    async def flowing_since(self, moment: datetime) -> bool:
        """Whether every partition has stored a reading produced after `moment`."""
        rows = await self.database.fetch(
            "SELECT DISTINCT source_partition FROM readings WHERE time > $1", moment
        )
        return len(rows) == self.partitions

    async def lag_s(self) -> float | None:
        """Seconds between now and the newest event time stored (None: nothing stored)."""
        lag = await self.database.fetchval(
            "SELECT extract(epoch FROM clock_timestamp() - max(time)) FROM readings"
        )
        return None if lag is None else float(lag)

    async def live(
        self,
        count: int,
        *,
        within_s: float,
        timeout: float,
        producer: asyncio.subprocess.Process,
    ) -> None:
        """Wait until `count` readings are stored and the newest is at most `within_s` old
        while `producer` still produces: the worker keeps up with a live stream (a kill then
        shows as a stall)."""
        deadline = time.monotonic() + timeout
        while True:
            stored, lag = await self.stored(), await self.lag_s()
            behind = (
                f"the worker did not keep up with the stream before it ended: {stored} "
                f"readings stored, the newest {lag} s old"
            )
            assert producer.returncode is None, behind
            assert time.monotonic() < deadline, behind
            if stored >= count and lag is not None and lag <= within_s:
                return
            await asyncio.sleep(0.2)

    async def until(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (stored := await self.stored()) < count:
            assert time.monotonic() < deadline, f"{stored} of {count} readings stored"
            await asyncio.sleep(0.5)


async def recovery_after(progress: Progress, killed_at: float, timeout: float = 120) -> float:
    """Seconds from the kill (monotonic) until every partition stores readings produced
    after it: the stream flowing again end to end."""
    # Event time follows the producer's clock to within its 50 ms pacing chunks.
    after = datetime.now(UTC) - timedelta(seconds=time.monotonic() - killed_at - 0.1)
    while not await progress.flowing_since(after):
        if time.monotonic() - killed_at > timeout:
            rows = await progress.database.fetch(
                "SELECT source_partition, count(*), max(time) FROM readings GROUP BY 1 ORDER BY 1"
            )
            raise AssertionError(
                f"the stream did not flow again within {timeout:.0f} s: killed at {after}, "
                f"stored {[tuple(row) for row in rows]}"
            )
        await asyncio.sleep(0.1)
    return time.monotonic() - killed_at


@dataclass
class Report:
    """Figures of the slow tests, printed and kept in artifacts/cluster-faults.json."""

    figures: dict[str, object] = field(default_factory=dict)

    def add(self, name: str, **values: object) -> None:
        self.figures[name] = values
        print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / "cluster-faults.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        known[name] = values
        path.write_text(json.dumps(known, indent=2) + "\n")
