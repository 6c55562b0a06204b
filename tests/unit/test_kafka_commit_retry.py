"""A commit refused while the group's coordinator moves (its broker was lost) is retried
until it passes, within the consumer's timeout; other refusals are not retried."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.kafka.consumer import KafkaConsumerBase
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import TopicPartition

UNREACHABLE = "127.0.0.1:1"
OFFSETS = {TopicPartition("orders", 0): 7}


class Refusing:
    """librdkafka's consumer whose next commits raise the given errors."""

    def __init__(self, *codes: int) -> None:
        self.codes = list(codes)
        self.commits = 0

    def commit(self, offsets: Any, asynchronous: bool) -> list[Any]:
        self.commits += 1
        if self.codes:
            raise KafkaException(KafkaError(self.codes.pop(0), "injected"))
        return []


def member(refusing: Refusing) -> KafkaConsumerBase:
    consumer = KafkaEventLog(UNREACHABLE, timeout=5).consumer(group_id="g", topics=["orders"])
    assert isinstance(consumer, KafkaConsumerBase)
    consumer._consumer.close()
    consumer._consumer = refusing  # type: ignore[assignment]
    return consumer


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.REBALANCE_IN_PROGRESS,
    ],
)
def test_a_commit_refused_while_the_coordinator_moves_is_retried(code: int) -> None:
    refusing = Refusing(code, code)

    member(refusing)._commit(OFFSETS)

    assert refusing.commits == 3


def test_a_commit_refused_for_another_reason_is_not_retried() -> None:
    refusing = Refusing(KafkaError.TOPIC_AUTHORIZATION_FAILED)

    with pytest.raises((BrokerUnavailable, ConfigurationError)):
        member(refusing)._commit(OFFSETS)

    assert refusing.commits == 1
