"""Rows committed to a checkpoint store as a job's runtime commits them: by sink name, as
consecutive batches of one partition of one consumer group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import (
    CheckpointBatch,
    CheckpointStore,
    Committed,
    SinkRows,
)


class SinkBatches:
    """Each `commit` is the partition's next batch (offset n → n + 1) of `group_id`."""

    def __init__(
        self, store: CheckpointStore, partition: TopicPartition, *, group_id: str = "test"
    ) -> None:
        self.store = store
        self.partition = partition
        self.group_id = group_id
        self._offset = 0

    async def commit(self, rows: Mapping[str, Sequence[object]]) -> Committed:
        """Commit `rows` by sink name (empty ones left out) as one batch."""
        start = self._offset
        self._offset += 1
        return await self.store.commit(
            CheckpointBatch(
                group_id=self.group_id,
                start_offsets={self.partition: start},
                next_offsets={self.partition: self._offset},
                writes=[
                    SinkRows(sink=name, rows=r, parts=[0] * len(r), origins=[None] * len(r))
                    for name, r in rows.items()
                    if r
                ],
            )
        )
