"""Time-series sinks of a job under database authority: a sink whose values are `Point`s
writes them to the `TimeSeries` port, before the batch's checkpoint commits.

Points are idempotent (a point named like a stored one replaces it), so writing them first
gives each batch an exactly-once effect: a crash after the write and before the commit
replays the batch, which writes the same points again, over themselves. Writing them after
the commit would lose them on a crash between the two. A server that cannot be reached
fails the batch with TimeSeriesUnavailable (a TransientError) before anything commits: the
consumer loop retries it in place, partitions paused, and `ping` (its health check) fails
too, so the outage pauses the job as a database outage does instead of sending the batch
to a retry topic.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import cast

from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore, Committed
from pipeline.application.ports.records import TopicPartition
from pipeline.application.ports.timeseries import Point, TimeSeries
from pipeline.streams import Job


def timeseries_sinks(job: Job) -> list[str]:
    """The names of `job`'s sinks whose values are time-series points."""
    return sorted(name for name, sink in job.sinks.items() if issubclass(sink.value, Point))


class TimeSeriesCheckpoint:
    """A `CheckpointStore` that writes the rows of the `sinks` named (points) to `series`,
    then commits the rest of the batch to `store`."""

    def __init__(self, store: CheckpointStore, series: TimeSeries, sinks: Collection[str]) -> None:
        self._store = store
        self._series = series
        self._sinks = frozenset(sinks)

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """Write the batch's points (all of them, in one call), then commit the rest; the
        points count as written in `Committed.written` (the server cannot tell a new point
        from one written again)."""
        points: list[Point] = []
        counts: dict[str, int] = {}
        rest = []
        for write in batch.writes:
            if write.sink in self._sinks:
                points.extend(cast("Sequence[Point]", write.rows))
                counts[write.sink] = counts.get(write.sink, 0) + len(write.rows)
            else:
                rest.append(write)
        if not points:
            return await self._store.commit(batch)
        await self._series.write(points)
        committed = await self._store.commit(replace(batch, writes=rest))
        return replace(committed, written={**committed.written, **counts})

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The store's."""
        return await self._store.stored_offsets(group_id, partitions)

    async def load_state(
        self, group_id: str, parts: Sequence[int]
    ) -> Mapping[int, Mapping[str, Collection[tuple[bytes, bytes]]]]:
        """The store's."""
        return await self._store.load_state(group_id, parts)

    async def ping(self) -> None:
        """Both answer: the store, then the time-series server."""
        await self._store.ping()
        await self._series.ping()

    async def close(self) -> None:
        """The store's (the time-series server is its owner's to close)."""
        await self._store.close()
