"""Translating between confluent-kafka's messages and partitions and the application's."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.application.ports import Record, TopicPartition


def to_record(message: Message) -> Record:
    """The application's view of a consumed Kafka message. Its topic is the interned str of
    the name: confluent-kafka makes a new one for every message, which a batch's records
    would otherwise hold (70-odd bytes each, a topic's names being few)."""
    timestamp_type, timestamp = message.timestamp()
    headers = message.headers()
    return Record(
        topic=sys.intern(message.topic() or ""),
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        timestamp_ms=0 if timestamp_type == TIMESTAMP_NOT_AVAILABLE else timestamp,
        headers=_headers(headers),
    )


def _headers(
    headers: dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None,
) -> tuple[tuple[str, bytes], ...]:
    # Consumed messages carry a list; the dict form is accepted for completeness.
    if not headers:
        return ()
    items = headers.items() if isinstance(headers, dict) else headers
    return tuple((name, _header_bytes(value)) for name, value in items)


def _header_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def kafka_partitions(offsets: Mapping[TopicPartition, int]) -> list[KafkaTopicPartition]:
    """confluent-kafka TopicPartitions carrying the given offsets."""
    return [KafkaTopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]
