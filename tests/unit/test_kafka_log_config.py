"""KafkaEventLog's client configuration, error translation and record mapping (no broker)."""

from __future__ import annotations

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, KafkaException, Message

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.kafka.config import (
    CONSUMER_DEFAULTS,
    CONSUMER_ENFORCED,
    PRODUCER_DEFAULTS,
    PRODUCER_ENFORCED,
    client_settings,
    translate,
)
from pipeline.adapters.kafka.consumer import to_record
from pipeline.application.errors import BrokerUnavailable, ConfigurationError, PublishError
from pipeline.application.ports import Record
from pipeline.domain.errors import PipelineError


def producer_settings(**client_config: str) -> dict[str, object]:
    return client_settings(
        "producer",
        bootstrap_servers="broker:9092",
        client_id="tests",
        client_config=client_config,
        defaults=PRODUCER_DEFAULTS,
        enforced=PRODUCER_ENFORCED,
    )


def test_the_producer_is_idempotent_and_uses_kafkas_default_partitioner() -> None:
    settings = producer_settings()

    assert settings["enable.idempotence"] == "true"
    assert settings["acks"] == "all"
    assert settings["partitioner"] == "murmur2_random"
    assert settings["bootstrap.servers"] == "broker:9092"


def test_client_config_is_passed_through_verbatim_and_wins_over_tuned_defaults() -> None:
    settings = producer_settings(
        **{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "linger.ms": "50"}
    )

    assert settings["security.protocol"] == "SASL_SSL"
    assert settings["sasl.mechanism"] == "PLAIN"
    assert settings["linger.ms"] == "50"


def test_consumers_never_commit_or_store_offsets_by_themselves() -> None:
    settings = client_settings(
        "consumer",
        bootstrap_servers="broker:9092",
        client_id="tests",
        client_config={},
        defaults=CONSUMER_DEFAULTS,
        enforced=CONSUMER_ENFORCED,
    )

    assert settings["enable.auto.commit"] == "false"
    assert settings["enable.auto.offset.store"] == "false"
    assert settings["isolation.level"] == "read_committed"
    assert settings["auto.offset.reset"] == "earliest"


@pytest.mark.parametrize(
    ("option", "config"),
    [
        ("consumer_config", {"enable.auto.commit": "true"}),
        ("client_config", {"enable.idempotence": "false"}),
        ("producer_config", {"acks": "1"}),
    ],
)
def test_settings_that_break_the_adapters_guarantees_are_refused(
    option: str, config: dict[str, str]
) -> None:
    with pytest.raises(ConfigurationError):
        KafkaEventLog("broker:9092", **{option: config})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "default", "expected"),
    [
        (KafkaError._TRANSPORT, PublishError, BrokerUnavailable),
        (KafkaError._ALL_BROKERS_DOWN, PublishError, BrokerUnavailable),
        (KafkaError.INVALID_PARTITIONS, BrokerUnavailable, ConfigurationError),
        (KafkaError.MSG_SIZE_TOO_LARGE, PublishError, PublishError),
    ],
)
def test_kafka_errors_become_application_errors(
    code: int, default: type[PipelineError], expected: type[PipelineError]
) -> None:
    error = translate(KafkaException(KafkaError(code)), "doing it", default)

    assert type(error) is expected
    assert str(error).startswith("doing it: ")


def test_a_consumed_message_becomes_a_record_with_bytes_headers() -> None:
    message = Message(  # type: ignore[call-arg]  # types-confluent-kafka lags 2.16's API
        topic="readings",
        partition=2,
        offset=41,
        key=b"sensor-1",
        value=b"payload",
        headers=[("type", b"reading"), ("empty", None), ("text", "utf8")],
        timestamp=(TIMESTAMP_CREATE_TIME, 1_700_000_000_123),
    )

    assert to_record(message) == Record(
        topic="readings",
        partition=2,
        offset=41,
        key=b"sensor-1",
        value=b"payload",
        timestamp_ms=1_700_000_000_123,
        headers=(("type", b"reading"), ("empty", b""), ("text", b"utf8")),
    )


def test_records_of_one_topic_share_one_topic_name() -> None:
    # confluent-kafka gives every message its own str of the topic's name; the records of
    # a batch, held until it is durable, keep one.
    names = ["".join(("read", "ings")) for _ in range(2)]
    assert names[0] is not names[1]
    first, second = (
        to_record(Message(topic=name, partition=0, offset=i, value=b"v"))  # type: ignore[call-arg]
        for i, name in enumerate(names)
    )

    assert first.topic == "readings"
    assert first.topic is second.topic


@pytest.mark.parametrize(
    ("client_config", "wait_ms"), [({}, "100"), ({"fetch.wait.max.ms": "20"}, "20")]
)
def test_a_changelog_table_waits_at_most_100_ms_per_empty_fetch_unless_configured(
    client_config: dict[str, str], wait_ms: str
) -> None:
    # Reading a table to its end takes a few empty fetches: at librdkafka's 500 ms each, a
    # worker joining a reference table started a second later.
    log = KafkaEventLog(bootstrap_servers="broker:9092", client_config=client_config)

    table = log.changelog_table("metadata", decode_key=bytes, decode_value=bytes)

    assert table._settings["fetch.wait.max.ms"] == wait_ms
