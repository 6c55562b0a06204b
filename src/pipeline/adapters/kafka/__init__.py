"""Kafka adapters (confluent-kafka / librdkafka)."""

from pipeline.adapters.kafka.log import KafkaEventLog

__all__ = [
    "KafkaEventLog",
]
