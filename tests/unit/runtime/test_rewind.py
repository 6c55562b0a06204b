"""What `rewind_job` asks the log to do: offsets move back only, every source topic of a
partition moved moves with it, its state is emptied (with a replay horizon when it restarts
past its first record), and a log that cannot rewind a group is refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from pipeline.adapters.memory import InMemoryEventLog
from pipeline.application.errors import ConfigurationError
from pipeline.application.kafka_authority import GroupRewinding, OutRecord
from pipeline.application.ports import TopicPartition
from pipeline.application.runtime.rewind import rewind_job
from pipeline.streams.state import STREAM_TIME_STEP, loads
from pipeline.streams.task import HORIZON
from tests.unit.runtime.jobs import tick_job

TOPIC = "ticks"
GROUP = "g"


class RecordingLog:
    """A `GroupRewinding` log with committed offsets, recording the rewind asked of it."""

    def __init__(self, committed: Mapping[TopicPartition, int]) -> None:
        self.committed = dict(committed)
        self.rewinds: list[tuple[dict[TopicPartition, int], list[str], list[OutRecord]]] = []

    async def group_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: self.committed[tp] for tp in partitions if tp in self.committed}

    async def rewind_group(
        self,
        group_id: str,
        *,
        offsets: Mapping[TopicPartition, int],
        changelogs: Sequence[str],
        state: Sequence[OutRecord],
    ) -> int:
        self.rewinds.append((dict(offsets), list(changelogs), list(state)))
        return 7


def tp(partition: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition)


async def test_only_partitions_committed_past_the_start_move_back() -> None:
    log = RecordingLog({tp(0): 50, tp(1): 5})
    assert isinstance(log, GroupRewinding)

    rewound = await rewind_job(log, tick_job(TOPIC), GROUP, {tp(0): 10, tp(1): 10, tp(2): 10})

    [(offsets, _, _)] = log.rewinds
    assert offsets == {tp(0): 10}  # 1 is before the start, 2 was never committed
    assert rewound.offsets == {tp(0): (50, 10)}
    assert rewound.tombstoned == 7


async def test_a_partition_restarting_past_its_first_record_gets_a_horizon_to_set() -> None:
    log = RecordingLog({tp(0): 50, tp(1): 50})

    rewound = await rewind_job(log, tick_job(TOPIC), GROUP, {tp(0): 0, tp(1): 20})

    [(_, changelogs, state)] = log.rewinds
    assert rewound.partial == [1]
    assert f"{GROUP}-{STREAM_TIME_STEP}-changelog" in changelogs
    assert [(r.partition, loads(r.key or b""), loads(r.value or b"")) for r in state] == [
        (1, HORIZON, None)
    ]


async def test_nothing_is_asked_when_no_partition_moves_back() -> None:
    log = RecordingLog({tp(0): 5})

    rewound = await rewind_job(log, tick_job(TOPIC), GROUP, {tp(0): 5})

    assert log.rewinds == []
    assert rewound.offsets == {}


async def test_a_log_that_cannot_rewind_a_group_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot move a group's offsets"):
        await rewind_job(InMemoryEventLog(), tick_job(TOPIC), GROUP, {tp(0): 0})
