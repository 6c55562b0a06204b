"""Kafka to Kafka, exactly once, through a crash: a job process (tests/kafka_eos_job.py)
SIGKILLed mid-stream and restarted leaves every output exactly once for read_committed
readers, and its keyed state (a running count per key) neither loses nor repeats a record."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.ports import TopicSpec
from pipeline.application.topic_names import changelog_topic, dead_letter_topic
from tests.integration.topics import read_committed
from tests.services import KAFKA, require_service

pytestmark = pytest.mark.integration

PARTITIONS = 3
KEYS = 25
RATE = 1_500
"""Records produced, per second."""
KILL_AFTER = 1_000
"""Outputs committed before the job is SIGKILLed."""
HOLD_AT = 6_000
"""Records the stream stops at until the kill, if the job is that slow to start (it is then
still working through them when it is killed)."""
AFTER_KILL = 3_000
"""Records the stream produces after the kill: however long the job takes to start on a
loaded machine, the kill falls mid-stream."""


class Topics:
    def __init__(self, bootstrap: str) -> None:
        run = uuid.uuid4().hex[:10]
        self.bootstrap = bootstrap
        self.source = f"crash-src-{run}"
        self.output = f"crash-out-{run}"
        self.group = f"crash-{run}"

    def job(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tests.kafka_eos_job",
            *("--bootstrap", self.bootstrap, "--source", self.source),
            *("--output", self.output, "--group", self.group),
            *("--member", "job-1", "--batch", "40"),
        ]


@pytest.fixture
async def topics() -> AsyncIterator[Topics]:
    topics = Topics(require_service(KAFKA))
    log = KafkaEventLog(topics.bootstrap)
    await log.ensure_topics(
        [
            TopicSpec(name=topics.source, partitions=PARTITIONS),
            TopicSpec(name=topics.output, partitions=PARTITIONS),
            TopicSpec(name=dead_letter_topic(topics.source), partitions=1),
        ]
    )
    yield topics
    names = [topics.source, topics.output, dead_letter_topic(topics.source)]
    names += [changelog_topic(topics.group, s) for s in ("count", "__stream_time__")]
    for future in (
        AdminClient({"bootstrap.servers": topics.bootstrap}).delete_topics(names).values()
    ):
        future.exception()


async def produce(topics: Topics, killed: asyncio.Event) -> int:
    """Records on KEYS keys at about RATE per second, holding at HOLD_AT until `killed` is
    set, then AFTER_KILL more; return how many."""
    log = KafkaEventLog(topics.bootstrap)
    step = RATE // 20
    produced = 0
    stop_at: int | None = None
    while stop_at is None or produced < stop_at:
        if stop_at is None and produced >= HOLD_AT:
            await killed.wait()
        for n in range(produced, produced + step):
            await log.publish(topics.source, f"key-{n % KEYS}".encode(), str(n).encode())
        produced += step
        await log.flush()
        if stop_at is None and killed.is_set():
            stop_at = produced + AFTER_KILL
        await asyncio.sleep(1 / 20)
    return produced


async def outputs(topics: Topics) -> list[tuple[bytes | None, int, int, int]]:
    """(key, input value, count, output offset) of every committed output record."""
    records = await asyncio.to_thread(read_committed, topics.bootstrap, topics.output)
    found = []
    for r in records:
        value, count = (r.value or b"").split(b"|")
        found.append((r.key, int(value), int(count), r.offset))
    return found


async def wait_for_outputs(topics: Topics, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (seen := len(await outputs(topics))) < at_least:
        assert time.monotonic() < deadline, f"{seen} of {at_least} outputs after {timeout} s"
        await asyncio.sleep(0.3)
    return seen


async def test_a_job_killed_mid_stream_and_restarted_writes_every_output_exactly_once(
    topics: Topics,
) -> None:
    job = await asyncio.create_subprocess_exec(*topics.job(), stdout=asyncio.subprocess.PIPE)
    killed = asyncio.Event()
    stream = asyncio.create_task(produce(topics, killed))
    try:
        await wait_for_outputs(topics, KILL_AFTER, timeout=120)
        job.send_signal(signal.SIGKILL)
        await job.wait()
        killed.set()
        restarted = await asyncio.create_subprocess_exec(
            *topics.job(), stdout=asyncio.subprocess.PIPE
        )
        try:
            total = await stream
            await wait_for_outputs(topics, total, timeout=180)
            restarted.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(restarted.wait(), 30) == 0
        finally:
            if restarted.returncode is None:
                restarted.kill()
    finally:
        stream.cancel()
        if job.returncode is None:
            job.kill()
    assert restarted.stdout is not None
    events = [json.loads(line) for line in (await restarted.stdout.read()).splitlines()]
    restored = [e for e in events if e["event"] == "restored"]
    assert sum(e["keys"] for e in restored) > 0, "the restart restores the counts"

    found = await outputs(topics)
    assert Counter(value for _, value, _, _ in found) == Counter(range(total))
    # The counts of each key, in output order, are 1, 2, 3, …: the state restored after
    # the kill held exactly the records whose outputs were committed.
    per_key: dict[bytes | None, list[int]] = defaultdict(list)
    for key, _, count, _ in sorted(found, key=lambda f: f[3]):
        per_key[key].append(count)
    assert {key: counts == list(range(1, len(counts) + 1)) for key, counts in per_key.items()} == {
        key: True for key in per_key
    }
