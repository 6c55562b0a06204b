"""Recovery of a Kafka-authority job with a large state, after SIGKILL: a benchmark.

    eval "$(scripts/stack env)"
    uv run python benchmarks/kafka_state_restore.py --keys 1000000

1. Writes a state of `--keys` keys (step "count" of benchmarks/kafka_counting_job.py,
   spread over `--partitions` partitions) to its changelog topic through
   `KafkaTransactionalCheckpoint`,
   in transactions of 100,000 entries.
2. Starts the job (static group membership, member `job-1`): it restores that state and
   processes a stream of records on keys of the state, committing every batch.
3. SIGKILLs it mid-stream (a transaction is usually open), restarts it, and reports from the
   restarted process's own lines: seconds from the restart to the end of the restore,
   seconds spent restoring (`load_state`: waiting for open transactions, reading the
   changelog read_committed, keeping the latest value per key), and seconds from the
   restart to its first batch committed, i.e. the first new output visible to
   read_committed readers. The restart includes Python's start-up and the group join.
   The restore's CPU seconds (every thread of the process: librdkafka's too) tell what it
   costs whatever the load; the wall clock is what the machine left it.

Topics are unique per run and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.kafka.group_consumer import KafkaGroupConsumer
from pipeline.adapters.memory.partitioner import partition_for_key
from pipeline.application.kafka_authority import TopicSink
from pipeline.application.ports import TopicSpec
from pipeline.application.ports.checkpoint import CheckpointBatch
from pipeline.application.topic_names import changelog_topic, dead_letter_topic
from pipeline.streams.state import StateChange, dumps

ROOT = Path(__file__).resolve().parent.parent
STEP = "count"
CHUNK = 100_000


async def unused(row: object) -> tuple[bytes | None, bytes | None]:
    raise AssertionError("the loader writes no sink rows")


async def write_state(bootstrap: str, source: str, output: str, group: str, keys: int) -> float:
    """Commit `keys` state entries as the job's state; return the seconds it took."""
    log = KafkaEventLog(bootstrap)
    consumer = log.consumer(group_id=group, topics=[source])
    assert isinstance(consumer, KafkaGroupConsumer)
    checkpoint = log.transactional_checkpoint(
        consumer, member_id="loader", sinks={"out": TopicSink(output, unused)}, steps=[STEP]
    )
    try:
        await checkpoint.start()
        while not consumer.assignment():  # the checkpoint writes only partitions it holds
            await consumer.poll(1, 0.5)
        partitions = await log.end_offsets(source)
        assert len(consumer.assignment()) == len(partitions), "the loader holds every partition"
        started = time.monotonic()
        for chunk in range(0, keys, CHUNK):
            changes = []
            for n in range(chunk, min(keys, chunk + CHUNK)):
                key = b"key-%d" % n  # in the partition Kafka's partitioner gives the key
                changes.append(
                    StateChange(STEP, partition_for_key(key, len(partitions)), dumps(key), dumps(1))
                )
            await checkpoint.commit(
                CheckpointBatch(group_id=group, start_offsets={}, next_offsets={}, state=changes)
            )
        return time.monotonic() - started
    finally:
        await checkpoint.close()
        await consumer.close()


async def stream(bootstrap: str, source: str, keys: int, stop: asyncio.Event) -> None:
    """Records on keys of the state, about 2,000 per second, until `stop`."""
    log = KafkaEventLog(bootstrap)
    n = 0
    while not stop.is_set():
        for _ in range(100):
            await log.publish(source, b"key-%d" % (n * 7919 % keys), str(n).encode())
            n += 1
        await log.flush()
        await asyncio.sleep(0.05)


class JobProcess:
    """benchmarks/kafka_counting_job.py as a child process, with its JSON lines as they come."""

    def __init__(self, process: asyncio.subprocess.Process, started: float) -> None:
        self.process = process
        self.started = started
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, args: list[str]) -> JobProcess:
        started = time.time()
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "benchmarks" / "kafka_counting_job.py"), *args,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process, started)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.events.append(json.loads(line))

    async def first(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events if e["event"] == event]
            if found:
                return found[0]
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise SystemExit(f"the job never reported {event!r}")
            await asyncio.sleep(0.01)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    source, output, group = f"bench-src-{run}", f"bench-out-{run}", f"bench-{run}"
    log = KafkaEventLog(args.bootstrap)
    await log.ensure_topics(
        [
            TopicSpec(name=source, partitions=args.partitions),
            TopicSpec(name=output, partitions=args.partitions),
            TopicSpec(name=dead_letter_topic(source), partitions=1),
        ]
    )
    stop = asyncio.Event()
    job_args = [
        *("--bootstrap", args.bootstrap, "--source", source, "--output", output),
        *("--group", group, "--member", "job-1", "--batch", "500", "--static"),
    ]
    try:
        seconds = await write_state(args.bootstrap, source, output, group, args.keys)
        print(f"state written: {args.keys:,} keys in {seconds:.1f} s")
        producer = asyncio.create_task(stream(args.bootstrap, source, args.keys, stop))
        first = await JobProcess.start(job_args)
        restored = await first.first("restored", timeout=300)
        await first.first("committed", timeout=120)
        print(f"first start: restored {restored['keys']:,} keys in {restored['seconds']:.2f} s")
        await asyncio.sleep(2)  # mid-stream: batches keep coming
        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()

        second = await JobProcess.start(job_args)
        restored = await second.first("restored", timeout=300)
        committed = await second.first("committed", timeout=120)
        print(
            f"after SIGKILL: restored {restored['keys']:,} keys in {restored['seconds']:.2f} s "
            f"(stored_offsets {restored['offsets_seconds']:.2f} s, "
            f"load_state {restored['load_state_seconds']:.2f} s, "
            f"unpickling {restored['unpickle_seconds']:.2f} s; "
            f"CPU {restored['cpu_seconds']:.2f} s, every thread of the process)\n"
            f"restart → restored: {restored['at'] - second.started:.2f} s\n"
            f"restart → first new output committed: {committed['at'] - second.started:.2f} s"
        )
        second.process.send_signal(signal.SIGTERM)
        await second.process.wait()
        stop.set()
        await producer
    finally:
        stop.set()
        names = [source, output, dead_letter_topic(source)]
        names += [changelog_topic(group, s) for s in (STEP, "__stream_time__")]
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        for future in admin.delete_topics(names).values():
            future.exception()


if __name__ == "__main__":
    asyncio.run(main())
