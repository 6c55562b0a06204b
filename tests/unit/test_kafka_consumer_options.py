"""`PIPELINE_KAFKA__CONSUMER_OPTIONS`: librdkafka options for the consumers alone (no broker:
the clients are built on first use, the settings are checked when the log is built)."""

from __future__ import annotations

import pytest

from pipeline.application.errors import ConfigurationError
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import KafkaSettings, Settings


def kafka_settings(**consumer_options: str) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9", consumer_options=consumer_options)
    )


async def test_consumer_options_reach_the_consumers() -> None:
    # A consumer that committed by itself would break exactly-once: refused, so it got there.
    with pytest.raises(ConfigurationError, match=r"consumer needs enable\.auto\.commit"):
        await bootstrap(kafka_settings(**{"enable.auto.commit": "true"}), database=False)


async def test_consumer_options_do_not_reach_the_producer() -> None:
    # The producer would refuse to run without idempotence: it never sees this option.
    pipeline = await bootstrap(kafka_settings(**{"enable.idempotence": "false"}), database=False)
    await pipeline.aclose()
