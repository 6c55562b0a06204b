"""Reading offsets while a topic's partitions' leadership is still settling (a topic just
created, a broker restarted): the moments Kafka reports are waited out, not raised; and
waiting for the leaders of topics made sure of only where needed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.adapters.kafka.admin import KafkaTopicAdmin, _Seen
from pipeline.adapters.kafka.logs import KafkaLogs
from pipeline.adapters.kafka.table import _holds_records
from pipeline.application.errors import BrokerUnavailable
from pipeline.application.ports import TopicSpec


def admin(answers: list[KafkaException | dict[int, int]], timeout: float = 5.0) -> KafkaTopicAdmin:
    """An admin (no broker is reached) whose ListOffsets requests answer `answers` in turn."""
    made = KafkaTopicAdmin(
        {"bootstrap.servers": "127.0.0.1:1"},
        KafkaLogs("127.0.0.1:1"),
        replication_factor=1,
        timeout=timeout,
        connect_timeout=1.0,
    )
    made._reached = True

    async def known_partitions(topic: str, *_: object, **__: object) -> list[int]:
        return [0, 1]

    async def latest_offsets(
        topic: str, partitions: list[int], isolation: object
    ) -> dict[int, int]:
        answer = answers.pop(0)
        if isinstance(answer, KafkaException):
            raise answer
        return answer

    made._known_partitions = known_partitions  # type: ignore[method-assign]
    made._latest_offsets = latest_offsets  # type: ignore[method-assign]
    return made


@pytest.mark.parametrize("code", [KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.FENCED_LEADER_EPOCH])
async def test_a_leader_epoch_not_yet_agreed_on_is_waited_out(code: int) -> None:
    answers: list[KafkaException | dict[int, int]] = [
        KafkaException(KafkaError(code)),
        {0: 3, 1: 5},
    ]

    assert await admin(answers).end_offsets("orders") == {0: 3, 1: 5}


async def test_an_error_that_does_not_pass_is_raised_naming_the_topic() -> None:
    answers: list[KafkaException | dict[int, int]] = [
        KafkaException(KafkaError(KafkaError.UNKNOWN_LEADER_EPOCH)) for _ in range(100)
    ]

    with pytest.raises(BrokerUnavailable, match="end offsets of 'orders'"):
        await admin(answers, timeout=0.25).end_offsets("orders")


class SettlingConsumer:
    """A consumer whose watermark query fails `failures` times, as on a partition whose
    leader is not known yet, then finds it empty."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.asked = 0

    def get_watermark_offsets(self, *_: object, **__: object) -> tuple[int, int]:
        self.asked += 1
        if self.asked <= self.failures:
            raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return 7, 7


def test_a_table_partition_whose_leadership_settles_is_asked_again_and_found_empty() -> None:
    # Seen in CI on a topic just created: counted as holding records, the empty partition
    # kept the table's start waiting for a fetch that found nothing.
    consumer = SettlingConsumer(failures=2)

    assert _holds_records(consumer, "sensor-metadata", 0, 1.0) is False  # type: ignore[arg-type]
    assert consumer.asked == 3


def test_a_table_partition_whose_watermarks_cannot_be_had_is_read_to_its_end() -> None:
    # Counted as holding records once the leadership had time to settle: the table waits for
    # librdkafka's end-of-partition, as for any partition, instead of failing the worker's
    # start.
    consumer = SettlingConsumer(failures=10**6)

    holds = _holds_records(consumer, "sensor-metadata", 0, 1.0, settling_s=0.2)  # type: ignore[arg-type]

    assert holds is True
    assert consumer.asked > 1


async def test_ensure_topics_lists_the_cluster_once_and_asks_again_only_for_what_it_created() -> (
    None
):
    # A worker's start waits for this. One metadata request lists the cluster's topics:
    # "a" exists with its leaders and is not asked again. "b" is not listed, so it is asked
    # for by name (absent, or hidden from this principal?); found absent, it is created and
    # asked for again until its partitions are led.
    made = admin([])
    listings: list[None] = []
    asked: list[str] = []
    created: list[str] = []

    async def metadata(topic: str | None) -> object:
        assert topic is None  # by name through `_probe` only
        listings.append(topic)
        return SimpleNamespace(topics={"a": SimpleNamespace(error=None, partitions=led(2))})

    async def probe(topic: str) -> _Seen:
        asked.append(topic)
        exists = topic in created
        return _Seen([0, 1] if exists else [], led=exists)

    async def create(specs: list[TopicSpec]) -> set[str]:
        created.extend(spec.name for spec in specs)
        return set()

    made._metadata = metadata  # type: ignore[method-assign, assignment]
    made._probe = probe  # type: ignore[method-assign]
    made._create = create  # type: ignore[method-assign]

    await made.ensure_topics([TopicSpec(name="a", partitions=2), TopicSpec(name="b", partitions=2)])

    assert listings == [None]
    assert created == ["b"]
    assert asked == ["b", "b"]


async def test_ensure_topics_reads_the_sizes_of_sources_and_copies_in_one_request() -> None:
    # A dead-letter topic holds copies of its source's records: it is sized after the
    # source. Both sizes come from one DescribeConfigs; a copy already large enough is left.
    made = admin([])
    described: list[list[str]] = []
    raised: list[tuple[str, ...]] = []
    listed = {
        name: SimpleNamespace(error=None, partitions=led(1)) for name in ("orders", "orders.dlq")
    }

    async def metadata(topic: str | None) -> object:
        return SimpleNamespace(topics=listed)

    async def max_message_bytes(topics: list[str]) -> dict[str, int]:
        described.append(topics)
        return {"orders": 1_000, "orders.dlq": 5_000}

    async def make_room(specs: list[TopicSpec], known: dict[str, int]) -> None:
        raised.extend(
            (spec.name,)
            for spec in specs
            if known[spec.name] < int(spec.config["max.message.bytes"])
        )

    made._metadata = metadata  # type: ignore[method-assign, assignment]
    made._max_message_bytes = max_message_bytes  # type: ignore[method-assign]
    made._make_room = make_room  # type: ignore[method-assign]

    await made.ensure_topics(
        [
            TopicSpec(name="orders", partitions=1),
            TopicSpec(
                name="orders.dlq", partitions=1, holds_records_of="orders", headroom_bytes=100
            ),
        ]
    )

    assert described == [["orders", "orders.dlq"]]
    assert raised == []


def led(partitions: int) -> dict[int, SimpleNamespace]:
    """Partition metadata of `partitions` partitions, each with a leader."""
    return {p: SimpleNamespace(leader=1, error=None) for p in range(partitions)}
