"""Rewinding a job under Kafka authority: `pipeline replay` of a job whose sinks are topics.

Kafka Streams' application-reset tool, made safe. The job's own consumer group is moved
back to the requested offsets, and the state of the partitions moved is made what a run
starting there with no state holds: every changelog entry of theirs is tombstoned and, for
a partition that now starts in the middle of its log, a replay horizon marker is written
(see `pipeline.streams.task`), so that windows already open at the new start are not
emitted from part of their records. Tombstones, marker and offsets commit in one Kafka
transaction, with no member in the group (refused otherwise: `GroupActive`, also when one
joins while the transaction is written). The next `pipeline-worker <job>` then restores
that state and emits, from the new start, what a first run emits.

Offsets only ever move back: a partition whose requested start is at or past its committed
offset (or that the group never committed) keeps its offset and its state. A table's state
and offsets are left as they are: a table is the latest value per key, not a history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.application.errors import ConfigurationError
from pipeline.application.kafka_authority import GroupRewinding, OutRecord, changelog_topics
from pipeline.application.ports.records import TopicPartition
from pipeline.streams import Job
from pipeline.streams.task import rewound_state


@dataclass(frozen=True, slots=True, kw_only=True)
class Rewound:
    """What a rewind did."""

    group_id: str
    offsets: dict[TopicPartition, tuple[int, int]]
    """Per partition moved: (committed before, committed now)."""
    partial: list[int]
    """Source partitions that now start in the middle of their log (a replay horizon)."""
    tombstoned: int
    """State entries deleted."""


async def rewind_job(
    log: object, job: Job, group_id: str, start: Mapping[TopicPartition, int]
) -> Rewound:
    """Move group `group_id` of `job` (under Kafka authority) back to `start` (source
    partitions to offsets), with its state (see the module doc). `log` must be
    `GroupRewinding` (the Kafka event log); ConfigurationError otherwise."""
    if not isinstance(log, GroupRewinding):
        raise ConfigurationError(
            f"job {job.name!r}: {type(log).__name__} cannot move a group's offsets"
        )
    committed = await log.group_offsets(group_id, sorted(start))
    # A partition goes back if any of its source topics does; none goes forward.
    back = {tp.partition for tp, at in start.items() if at < committed.get(tp, at)}
    offsets = {
        tp: min(at, committed[tp])
        for tp, at in start.items()
        if tp.partition in back and tp in committed
    }
    partial = sorted({tp.partition for tp, at in offsets.items() if at > 0})
    tables = {spec.node.id for spec in job.tables.values()}
    steps = [step for step in job.plan().stateful_steps if step not in tables]
    changelogs = changelog_topics(group_id, steps)
    state = [
        OutRecord(changelogs[step], part, key, value)
        for part in partial
        for step, entries in rewound_state(partial=True).items()
        for key, value in entries
    ]
    tombstoned = 0
    if offsets:
        tombstoned = await log.rewind_group(
            group_id, offsets=offsets, changelogs=sorted(changelogs.values()), state=state
        )
    return Rewound(
        group_id=group_id,
        offsets={tp: (committed[tp], at) for tp, at in sorted(offsets.items())},
        partial=partial,
        tombstoned=tombstoned,
    )
