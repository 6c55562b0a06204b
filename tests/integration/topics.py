"""Reading back what a topic holds, for assertions on the real broker."""

from __future__ import annotations

import time

from pipeline.application.ports import Record, TopicPartition
from pipeline.entrypoints.bootstrap import Pipeline


async def read_topic(pipeline: Pipeline, topic: str, expected: int) -> list[Record]:
    """Every record of `topic`, waiting up to 30 s for `expected` of them."""
    ends = await pipeline.log.end_offsets(topic)
    reader = pipeline.log.reader(
        group_id="inspect", start={TopicPartition(topic, p): 0 for p in ends}
    )
    records: list[Record] = []
    deadline = time.monotonic() + 30
    try:
        # Everything the topic holds (its end offsets are final: the writer flushed).
        while len(records) < max(expected, sum(ends.values())) and time.monotonic() < deadline:
            records += await reader.poll(1000, 0.5)
    finally:
        await reader.close()
    return records
