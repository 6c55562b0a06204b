"""The consumer of a retry level: waits out each record's delay, then forwards it back.

The consumer loop holds a retry topic's batch, paused, until its `retry.not_before` has
passed; this handler then publishes every record, unchanged (key, value, timestamp and its
`retry.*` headers), to the topic it was first read from, waits for the broker's
acknowledgement, and stores the retry group's offsets. The job's own group processes it
there, with the job's state. A crash between the two forwards the batch again: the job sees
those records twice (its sinks' natural keys absorb a repeated row; a window counts it
twice, which is why diverting is kept for failures that persist while the database answers).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore
from pipeline.application.ports.event_log import EventLog
from pipeline.application.ports.records import Record, TopicPartition
from pipeline.application.runtime.report import BatchReport
from pipeline.application.topic_names import retry_level


class RetryForwarder:
    """The batch handler of a retry level's consumer group."""

    def __init__(self, *, group_id: str, log: EventLog, store: CheckpointStore) -> None:
        self.group_id = group_id
        self._log = log
        self._store = store

    async def prepare(self, records: Sequence[Record]) -> Sequence[Record]:
        """Nothing to decode: records are forwarded as they are."""
        return records

    async def idle(self, *, flush: bool = False) -> Sequence[Record] | None:
        """Nothing happens with time alone, nor is anything held back."""
        return None

    async def apply(self, records: Sequence[Record]) -> BatchReport:
        """Forward `records` to their original topics (acknowledged), then store offsets."""
        sent: Counter[str] = Counter()
        start: dict[TopicPartition, int] = {}
        after: dict[TopicPartition, int] = {}
        for record in records:
            target = retry_level(record.topic)[0]
            await self._log.publish(
                target, record.key, record.value, record.headers, timestamp_ms=record.timestamp_ms
            )
            sent[target] += 1
            start.setdefault(record.topic_partition, record.offset)
            after[record.topic_partition] = record.offset + 1
        if sent:
            await self._log.flush()
        started = time.perf_counter()
        await self._store.commit(
            CheckpointBatch(group_id=self.group_id, start_offsets=start, next_offsets=after)
        )
        return BatchReport(
            records=len(records),
            next_offsets=after,
            diverted=dict(sent),
            commit_seconds=time.perf_counter() - started,
        )
