"""Event-time layout of produced readings and the offsets a replay covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.application.ports import TopicPartition
from pipeline.entrypoints.replay import plan_replay
from pipeline.entrypoints.sensors import plan_production

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_fixed_rate_spaces_each_sensor_so_event_time_follows_the_clock() -> None:
    plan = plan_production(now=NOW, count=None, rate=200.0, sensors=100)

    assert plan.start == NOW
    assert plan.interval == timedelta(seconds=0.5)


def test_as_fast_as_possible_ends_now_so_no_reading_is_in_the_future() -> None:
    plan = plan_production(now=NOW, count=1_000, rate=0, sensors=100)

    assert plan.interval == timedelta(seconds=1)
    assert plan.start == NOW - timedelta(seconds=10)


def test_as_fast_as_possible_without_a_count_is_refused() -> None:
    with pytest.raises(ValueError, match="needs --count"):
        plan_production(now=NOW, count=None, rate=0, sensors=10)


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
