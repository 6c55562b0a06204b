"""How KafkaTransactionalProducer ends a transaction that fails, on a librdkafka double
that fails on cue (the broker's own behaviour is in tests/integration)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.adapters.kafka.txn_producer import KafkaTransactionalProducer, OwnershipMoved
from pipeline.application.errors import BrokerUnavailable, Fenced, ProducerFenced, PublishError
from pipeline.application.kafka_authority import OutRecord
from pipeline.application.ports import TopicPartition

OFFSETS = {TopicPartition("source", 0): 10}
RECORDS = [OutRecord("out", None, b"k", b"v"), OutRecord("source-count-changelog", 0, b"k", b"1")]


def failure(code: int, **flags: bool) -> KafkaException:
    return KafkaException(KafkaError(code, f"injected {code}", **flags))


class FakeClient:
    """Records the transactional calls; `fail[call]` lists errors its next calls raise."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.calls: list[str] = []
        self.produced: list[tuple[str, int, bytes | None]] = []
        self.fail: dict[str, list[KafkaException]] = {}
        self.open = False

    def _call(self, name: str) -> None:
        self.calls.append(name)
        pending = self.fail.get(name)
        if pending:
            raise pending.pop(0)

    def init_transactions(self, timeout: float) -> None:
        self._call("init")

    def begin_transaction(self) -> None:
        self._call("begin")
        self.open = True

    def produce(self, topic: str, value: bytes | None, key: bytes | None, **kw: Any) -> None:
        self._call("produce")
        self.produced.append((topic, kw["partition"], value))

    def send_offsets_to_transaction(self, offsets: Any, metadata: object, timeout: float) -> None:
        self._call("send_offsets")

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit")
        self.open = False

    def abort_transaction(self, timeout: float) -> None:
        if not self.open:
            raise failure(KafkaError._STATE)
        self._call("abort")
        self.open = False

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


class Clients:
    def __init__(self) -> None:
        self.made: list[FakeClient] = []

    def __call__(self, settings: dict[str, Any]) -> FakeClient:
        self.made.append(FakeClient(settings))
        return self.made[-1]

    @property
    def current(self) -> FakeClient:
        return self.made[-1]


@pytest.fixture
async def clients() -> Clients:
    return Clients()


@pytest.fixture
async def producer(clients: Clients) -> KafkaTransactionalProducer:
    txn = KafkaTransactionalProducer(
        {"transactional.id": "group-member"},
        timeout=1.0,
        client=clients,  # type: ignore[arg-type]
    )
    await txn.start()
    return txn


async def transact(producer: KafkaTransactionalProducer, token: object = "batch") -> bool:
    return await producer.transact(token, RECORDS, OFFSETS, lambda: "metadata", lambda: True)


async def test_a_committed_transaction_writes_the_records_then_the_offsets(
    producer: KafkaTransactionalProducer, clients: Clients
) -> None:
    assert await transact(producer) is True

    assert clients.current.calls == [
        "init",
        "begin",
        "produce",
        "produce",
        "send_offsets",
        "commit",
    ]
    assert clients.current.produced == [("out", -1, b"v"), ("source-count-changelog", 0, b"1")]


async def test_offsets_refused_for_a_generation_the_group_left_abort_and_fence(
    producer: KafkaTransactionalProducer, clients: Clients
) -> None:
    clients.current.fail["send_offsets"] = [
        failure(KafkaError.ILLEGAL_GENERATION, txn_requires_abort=True)
    ]

    with pytest.raises(Fenced, match="moved on"):
        await transact(producer)

    assert clients.current.calls[-1] == "abort"
    assert "commit" not in clients.current.calls


async def test_a_producer_fenced_by_a_newer_instance_stays_fenced(
    producer: KafkaTransactionalProducer, clients: Clients
) -> None:
    clients.current.fail["produce"] = [failure(KafkaError._FENCED, fatal=True)]

    with pytest.raises(ProducerFenced):
        await transact(producer)
    with pytest.raises(ProducerFenced):
        await transact(producer, token="next batch")

    assert len(clients.made) == 1, "a fenced instance never starts another producer"


async def test_a_transient_failure_aborts_and_the_retried_batch_is_written_once(
    producer: KafkaTransactionalProducer, clients: Clients
) -> None:
    clients.current.fail["commit"] = [failure(KafkaError._MSG_TIMED_OUT, txn_requires_abort=True)]

    with pytest.raises(BrokerUnavailable):
        await transact(producer)
    assert await transact(producer) is True

    assert clients.current.calls.count("abort") == 1
    assert clients.current.calls.count("commit") == 2
    assert len(clients.current.produced) == 2 * len(RECORDS)  # the aborted copy is invisible


async def test_a_commit_in_doubt_is_settled_and_the_same_batch_is_not_written_again(
    producer: KafkaTransactionalProducer, clients: Clients
) -> None:
    timeouts = [failure(KafkaError._TIMED_OUT, retriable=True) for _ in range(30)]
    clients.current.fail["commit"] = timeouts

    with pytest.raises(BrokerUnavailable, match="timed out"):
        await transact(producer, token=["batch", 1])
    timeouts.clear()  # the broker answers again; the coordinator had the commit
    assert await transact(producer, token=["batch", 1]) is False  # equal, rebuilt

    assert clients.current.calls.count("begin") == 1
    assert len(clients.current.produced) == len(RECORDS)


async def test_a_commit_in_doubt_that_aborts_fences_the_next_batch(
    producer: KafkaTransactionalProducer, clients: Clients
) -> None:
    # The caller moved on to a second batch, but the first one, in doubt, is lost: the
    # caller's state holds its changes, so it must re-sync from the checkpoint.
    clients.current.fail["commit"] = [failure(KafkaError._TIMED_OUT, retriable=True)] * 30

    with pytest.raises(BrokerUnavailable):
        await transact(producer, token="first")
    clients.current.fail["commit"] = [failure(KafkaError._MSG_TIMED_OUT, txn_requires_abort=True)]

    with pytest.raises(Fenced, match="not made durable") as raised:
        await transact(producer, token="second")

    assert not isinstance(raised.value, ProducerFenced)
    assert clients.current.calls[-1] == "abort"
    assert clients.current.calls.count("begin") == 1, "the second batch is not written"


async def test_partitions_revoked_while_writing_abort_the_transaction(
    producer: KafkaTransactionalProducer, clients: Clients
) -> None:
    with pytest.raises(OwnershipMoved):
        await producer.transact("batch", RECORDS, OFFSETS, lambda: "metadata", lambda: False)

    assert clients.current.calls[-1] == "abort"
    assert "send_offsets" not in clients.current.calls


async def test_a_record_the_broker_refuses_for_good_is_a_publish_error(
    producer: KafkaTransactionalProducer, clients: Clients
) -> None:
    clients.current.fail["produce"] = [failure(KafkaError.MSG_SIZE_TOO_LARGE)]

    with pytest.raises(PublishError):
        await transact(producer)

    assert clients.current.calls[-1] == "abort"
