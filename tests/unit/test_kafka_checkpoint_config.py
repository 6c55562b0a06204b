"""Names and configuration of the Kafka-authority checkpoint (no broker needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.errors import ConfigurationError
from pipeline.application.kafka_authority import TopicSink, transactional_id
from pipeline.application.ports import EventConsumer, TopicPartition
from pipeline.application.topic_names import changelog_topic

UNREACHABLE = "127.0.0.1:1"


async def encode(row: object) -> tuple[bytes | None, bytes | None]:
    return None, b""


@pytest.fixture
async def member() -> AsyncIterator[EventConsumer]:
    consumer = KafkaEventLog(UNREACHABLE).consumer(group_id="shop", topics=["orders"])
    yield consumer
    await consumer.close()


def test_a_steps_changelog_is_named_after_the_group_and_the_step() -> None:
    assert changelog_topic("shop", "funnel-5m") == "shop-funnel-5m-changelog"


def test_a_tables_changelog_is_named_after_its_topic() -> None:
    assert changelog_topic("shop", "table:accounts") == "shop-table.accounts-changelog"


def test_a_step_id_kafka_cannot_name_a_topic_after_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="'window:5m'"):
        changelog_topic("shop", "window:5m")


def test_the_transactional_id_is_the_group_and_the_stable_member_id() -> None:
    assert transactional_id("shop", "worker-3") == "shop-worker-3"
    with pytest.raises(ConfigurationError):
        transactional_id("shop", "")


async def test_a_checkpoint_binds_each_stateful_step_and_stream_time_to_a_changelog(
    member: EventConsumer,
) -> None:
    checkpoint = KafkaEventLog(UNREACHABLE).transactional_checkpoint(
        member, member_id="w1", sinks={"out": TopicSink("funnel", encode)}, steps=["funnel-5m"]
    )

    assert checkpoint.changelog_topics == {
        "__stream_time__": "shop-__stream_time__-changelog",
        "funnel-5m": "shop-funnel-5m-changelog",
    }
    await checkpoint.close()


async def test_a_checkpoint_with_a_step_that_cannot_name_a_topic_is_refused(
    member: EventConsumer,
) -> None:
    with pytest.raises(ConfigurationError, match="window:5m"):
        KafkaEventLog(UNREACHABLE).transactional_checkpoint(
            member, member_id="w1", sinks={}, steps=["window:5m"]
        )


async def test_a_checkpoint_needs_a_group_member_not_a_reader() -> None:
    reader = KafkaEventLog(UNREACHABLE).reader(
        group_id="shop", start={TopicPartition("orders", 0): 0}
    )
    try:
        with pytest.raises(ConfigurationError, match="group member"):
            KafkaEventLog(UNREACHABLE).transactional_checkpoint(
                reader, member_id="w1", sinks={}, steps=[]
            )
    finally:
        await reader.close()
