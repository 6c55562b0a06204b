"""The offsets a replay covers."""

from __future__ import annotations

import pytest

from pipeline.application.ports import TopicPartition
from pipeline.entrypoints.replay import plan_replay


def test_replay_covers_every_partition_from_the_offset_to_the_end() -> None:
    plan = plan_replay("t", {0: 10, 1: 3}, from_offset=5)

    assert plan.start == {TopicPartition("t", 0): 5, TopicPartition("t", 1): 3}
    assert plan.stop == {TopicPartition("t", 0): 10, TopicPartition("t", 1): 3}
    assert plan.total == 5


def test_replay_of_one_partition_stops_before_to_offset() -> None:
    plan = plan_replay("t", {0: 10, 1: 30}, from_offset=5, to_offset=20, partition=1)

    assert plan.start == {TopicPartition("t", 1): 5}
    assert plan.stop == {TopicPartition("t", 1): 20}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_offset": -1}, "must be >= 0"),
        ({"from_offset": 5, "to_offset": 5}, "must be greater"),
        ({"from_offset": 0, "partition": 7}, "has no partition 7"),
    ],
)
def test_impossible_replay_is_refused_with_a_readable_message(
    kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_replay("t", {0: 10}, **kwargs)
