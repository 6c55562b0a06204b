"""The load profile of `kafka_state_restore.py`: a Kafka-to-Kafka loop calling the
Kafka-authority checkpoint directly, so that the benchmark times the checkpoint's restore
path (`stored_offsets`, `load_state`, unpickling) alone. Jobs run under Kafka authority
through `pipeline-worker <job>`; this is not how to write one.

It reads the source topic in batches; each record becomes one output record keyed like it,
valued `<input value>|<n>`, where n counts the records of that key so far (keyed state,
step "count"). Every batch is committed through `KafkaTransactionalCheckpoint`: outputs,
changelog entries and offsets in one transaction. On assignment it restores its partitions'
counts from the changelog (as the engine does: keys decoded at once, each count when first
read) and resumes from the group's committed offsets. It prints JSON
lines on stdout: `{"event": "restored", ...}` per assignment, `{"event": "committed", ...}`
for the first batch committed. SIGTERM stops it after the batch in flight.

    python benchmarks/kafka_counting_job.py --bootstrap HOST:PORT --source S --output O --group G \
        --member M [--batch 100] [--static]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Hashable, Mapping, Sequence

import structlog

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.kafka.group_consumer import KafkaGroupConsumer
from pipeline.adapters.kafka.transactions import KafkaTransactionalCheckpoint
from pipeline.application.kafka_authority import TopicSink
from pipeline.application.ports import Record, TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkRows
from pipeline.streams.state import RestoredEntries, StateChange, dumps

STEP = "count"
GROUP_SETTINGS = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, "at": time.time(), **fields}), flush=True)


async def encode(row: object) -> tuple[bytes | None, bytes | None]:
    assert isinstance(row, tuple)
    return row[0], row[1]


class CountingJob:
    """The job's loop, calling the checkpoint port directly."""

    def __init__(self, args: argparse.Namespace) -> None:
        consumer_config = dict(GROUP_SETTINGS)
        if args.static:
            # Static membership: a restarted member takes its partitions back at once
            # instead of waiting for the killed one's session to expire.
            consumer_config["group.instance.id"] = args.member
        self.log = KafkaEventLog(args.bootstrap, consumer_config=consumer_config)
        self.group = args.group
        self.batch = args.batch
        self.counts: dict[int, dict[Hashable, int]] = {}
        consumer = self.log.consumer(
            group_id=args.group, topics=[args.source], resolve_offsets=self.resolve
        )
        assert isinstance(consumer, KafkaGroupConsumer)
        self.consumer = consumer
        self.checkpoint: KafkaTransactionalCheckpoint = self.log.transactional_checkpoint(
            consumer,
            member_id=args.member,
            sinks={"out": TopicSink(args.output, encode)},
            steps=[STEP],
        )
        self.stopping = False
        self.committed_once = False

    async def resolve(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        """Restore the newly assigned partitions' counts; resume from their offsets."""
        started, cpu = time.monotonic(), time.process_time()
        offsets = await self.checkpoint.stored_offsets(self.group, partitions)
        parts = sorted({tp.partition for tp in partitions})
        read = time.monotonic()
        state = await self.checkpoint.load_state(self.group, parts)
        loaded = time.monotonic()
        for part in parts:
            self.counts[part] = RestoredEntries(state[part].get(STEP, []))
        done = time.monotonic()
        emit(
            "restored",
            parts=parts,
            keys=sum(len(self.counts[p]) for p in parts),
            seconds=round(done - started, 3),
            offsets_seconds=round(read - started, 3),
            load_state_seconds=round(loaded - read, 3),
            unpickle_seconds=round(done - loaded, 3),
            cpu_seconds=round(time.process_time() - cpu, 3),
        )
        return offsets

    async def run(self) -> None:
        await self.checkpoint.start()
        try:
            while not self.stopping:
                records = await self.consumer.poll(self.batch, 0.2)
                if records:
                    await self.commit(records)
        finally:
            await self.checkpoint.close()
            await self.consumer.close()

    async def commit(self, records: list[Record]) -> None:
        rows: list[tuple[bytes | None, bytes]] = []
        parts: list[int] = []
        changed: dict[tuple[int, bytes | None], int] = {}
        starts: dict[TopicPartition, int] = {}
        nexts: dict[TopicPartition, int] = {}
        for record in records:
            counts = self.counts[record.partition]
            count = counts[record.key] = counts.get(record.key, 0) + 1
            changed[(record.partition, record.key)] = count
            rows.append((record.key, b"%s|%d" % (record.value or b"", count)))
            parts.append(record.partition)
            starts.setdefault(record.topic_partition, record.offset)
            nexts[record.topic_partition] = record.offset + 1
        committed = await self.checkpoint.commit(
            CheckpointBatch(
                group_id=self.group,
                start_offsets=starts,
                next_offsets=nexts,
                writes=[SinkRows(sink="out", rows=rows, parts=parts, origins=records)],
                state=[
                    StateChange(STEP, part, dumps(key), dumps(count))
                    for (part, key), count in changed.items()
                ],
            )
        )
        if committed.fenced:
            raise SystemExit(f"partitions moved away mid-batch: {committed.fenced}")
        if not self.committed_once:
            self.committed_once = True
            emit("committed", records=len(records))


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("bootstrap", "source", "output", "group", "member"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--static", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Logs on stderr: stdout carries the job's JSON events, one per line, for the test.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    async def run() -> None:
        job = CountingJob(args)

        def stop() -> None:
            job.stopping = True

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
        await job.run()

    asyncio.run(run())


if __name__ == "__main__":
    main()
