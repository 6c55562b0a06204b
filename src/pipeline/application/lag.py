"""How far a projection is behind its topic: end offsets minus the offsets the projection
stored with its last batch (its durable progress, not a consumer's in-memory position)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.application.ports.event_log import EventLog
from pipeline.application.ports.records import TopicPartition


class OffsetStore(Protocol):
    """Where a group's durable progress is kept."""

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The next offset to read per partition, as stored with the group's last batch."""
        ...


async def consumer_lag(log: EventLog, store: OffsetStore, topic: str, group: str) -> int:
    """Records of `topic` that consumer group `group` has not yet made durable in `store`."""
    ends = await log.end_offsets(topic)
    done = await store.stored_offsets(
        group, [TopicPartition(topic, partition) for partition in ends]
    )
    return sum(
        max(0, end - done.get(TopicPartition(topic, partition), 0))
        for partition, end in ends.items()
    )
