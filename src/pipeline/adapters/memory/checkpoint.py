"""The checkpoint of jobs under database authority, held in memory: the embedded default
CheckpointStore, behaving like the SQL ones (the contract suite in tests/contract proves it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pipeline.adapters.checkpoint_plan import check_sinks, partitions_of, plan_checkpoint
from pipeline.adapters.memory.dead_letters import InMemoryDeadLetterStore
from pipeline.application.ports.checkpoint import CheckpointBatch, Committed, SinkResult
from pipeline.application.ports.records import Record, TopicPartition

Undo = list[Callable[[], None]]
"""What a memory sink appends to, to take back what it wrote if the commit fails later."""


class MemorySink(Protocol):
    """Writes one batch's rows of one sink into in-memory tables."""

    def write(
        self, rows: Sequence[Any], origins: Sequence[Record | None], undo: Undo
    ) -> SinkResult:
        """Store `rows` (each from the record in `origins` at the same index, or None) and
        append to `undo` what puts the tables back as they were."""
        ...


class InMemoryCheckpointStore:
    """CheckpointStore in dictionaries, with the sink writers bound by name.

    `commit` never awaits, so on one event loop every batch commits atomically; when a sink
    raises, the sinks already called are undone and nothing of the batch remains. Dead
    letters go to `dead_letters` (pass the one the DLQ tool reads)."""

    def __init__(
        self,
        sinks: Mapping[str, MemorySink],
        *,
        dead_letters: InMemoryDeadLetterStore | None = None,
    ) -> None:
        self._sinks = dict(sinks)
        self._dead_letters = InMemoryDeadLetterStore() if dead_letters is None else dead_letters
        self._offsets: dict[tuple[str, TopicPartition], int] = {}
        # Per (group, partition): per step, serialized key to serialized value.
        self._state: dict[tuple[str, int], dict[str, dict[bytes, bytes]]] = {}

    @property
    def dead_letters(self) -> InMemoryDeadLetterStore:
        """The dead letters stored with the batches."""
        return self._dead_letters

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """Fence the partitions already past the batch's start, then write the rest's sink
        rows, state changes, dead letters and next offsets (an offset never moves back)."""
        check_sinks(batch, self._sinks)
        group = batch.group_id
        stored = {
            tp: self._offsets[(group, tp)]
            for tp in partitions_of(batch)
            if (group, tp) in self._offsets
        }
        plan = plan_checkpoint(batch, stored)
        written: dict[str, int] = {}
        events: list[object] = []
        undo: Undo = []
        try:
            for write in plan.writes:
                result = self._sinks[write.sink].write(write.rows, write.origins, undo)
                written[write.sink] = result.written
                events.extend(result.events)
        except BaseException:
            for step in reversed(undo):
                step()
            raise
        for change in plan.upserts:
            assert change.value is not None
            steps = self._state.setdefault((group, change.part), {})
            steps.setdefault(change.step, {})[change.key] = change.value
        for change in plan.deletes:
            self._state.get((group, change.part), {}).get(change.step, {}).pop(change.key, None)
        self._dead_letters.add(plan.dead_letters)
        for tp, offset in plan.next_offsets:
            key = (group, tp)
            self._offsets[key] = max(offset, self._offsets.get(key, offset))
        return Committed(written=written, events=tuple(events), fenced=plan.fenced)

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The next offset to read per partition, as stored with the group's last batch;
        partitions the group never stored are absent."""
        return {
            tp: self._offsets[(group_id, tp)]
            for tp in partitions
            if (group_id, tp) in self._offsets
        }

    async def load_state(
        self, group_id: str, parts: Sequence[int]
    ) -> dict[int, dict[str, list[tuple[bytes, bytes]]]]:
        """The group's state of `parts`: per partition (every one asked for, empty when it
        has none), per step id, the serialized (key, value) pairs."""
        return {
            part: {
                step: list(entries.items())
                for step, entries in self._state.get((group_id, part), {}).items()
                if entries
            }
            for part in parts
        }

    async def close(self) -> None:
        """Nothing runs in the background."""

    async def ping(self) -> None:
        """Always answers: the data is in this process."""
