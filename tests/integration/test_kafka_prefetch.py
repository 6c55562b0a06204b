"""A consumer facing a backlog keeps a few batches of it in memory, not the backlog: the
worker's peak memory must not grow with the lag it starts from."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.adapters.kafka.config import CONSUMER_DEFAULTS, CONSUMER_ENFORCED, client_settings
from tests.services import KAFKA, require_service

pytestmark = pytest.mark.integration

PARTITIONS = 3
BACKLOG = 150_000


def backlog_topic(bootstrap: str) -> str:
    topic = f"prefetch-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=30)
    # Room for the whole backlog in the producer's queue (100,000 records by default: a
    # slow broker left it full, and produce() refused).
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": BACKLOG}
    )
    value = b"r" * 80  # about a sensor reading's size in Avro
    for n in range(BACKLOG):
        producer.produce(topic, value, key=str(n % 40).encode())
        if n % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return topic


def test_a_consumer_of_a_backlog_prefetches_a_few_batches_not_the_backlog() -> None:
    bootstrap = require_service(KAFKA)
    topic = backlog_topic(bootstrap)
    queued: list[int] = []

    def stats(report: str) -> None:
        partitions = json.loads(report)["topics"].get(topic, {}).get("partitions", {})
        queued.append(sum(p["fetchq_cnt"] for key, p in partitions.items() if key != "-1"))

    settings = client_settings(
        "consumer",
        bootstrap_servers=bootstrap,
        client_id="prefetch-test",
        client_config={},
        defaults=CONSUMER_DEFAULTS,
        enforced=CONSUMER_ENFORCED,
    )
    consumer = Consumer(
        settings
        | {"group.id": f"prefetch-{uuid.uuid4().hex[:8]}", "statistics.interval.ms": 100}
        | {"stats_cb": stats}
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        # Until the first record (the group joined, the first fetch in), then one record
        # every 5 ms for 20 statistics: the application slower than the fetcher, as a worker
        # facing a backlog is, so the fetcher runs ahead as far as it is allowed. (Read as
        # fast as records come, the queue was empty at every statistic in some runs.)
        while not consumer.consume(1, 0.1) and time.monotonic() < deadline:
            pass
        queued.clear()  # the statistics before the assignment hold no partition's queue
        while len(queued) < 20 and time.monotonic() < deadline:
            consumer.consume(1, 0.1)
            time.sleep(0.005)
    finally:
        consumer.close()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.delete_topics([topic])[topic].result(30)

    assert len(queued) >= 20, "no record or no statistics from the consumer within 60 s"
    assert 0 < max(queued) <= 75_000, max(queued)  # half of a 150,000-record backlog
