"""A Kafka poll returns the records already waiting at once, however few: it never waits to
fill its batch; only a poll that had to wait for its first record lingers, briefly, for the
rest of that record's burst."""

from __future__ import annotations

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.kafka.consumer import BATCH_LINGER_S, KafkaConsumerBase
from pipeline.application.ports import TopicPartition

UNREACHABLE = "127.0.0.1:1"
TOPIC = "orders"


class FakeMessage:
    """What `to_record` reads of a confluent-kafka message."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_000)


class FetchedQueue:
    """librdkafka's consumer as `_consume` sees it: a local queue of fetched messages, and
    bursts that arrive while a call waits. Records the time each call was allowed to wait."""

    def __init__(self, waiting: int = 0, arriving: tuple[int, ...] = ()) -> None:
        self.queue = [FakeMessage(o) for o in range(waiting)]
        self.next_offset = waiting
        self.arriving = list(arriving)
        self.waits: list[float] = []

    def _arrive(self) -> None:
        if self.arriving:
            count = self.arriving.pop(0)
            self.queue += [FakeMessage(self.next_offset + i) for i in range(count)]
            self.next_offset += count

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.waits.append(timeout)
        if len(self.queue) < num_messages and timeout > 0:
            self._arrive()
        taken, self.queue = self.queue[:num_messages], self.queue[num_messages:]
        return taken

    def poll(self, timeout: float) -> FakeMessage | None:
        self.waits.append(timeout)
        if not self.queue:
            self._arrive()
        return self.queue.pop(0) if self.queue else None


def member(fetched: FetchedQueue) -> KafkaConsumerBase:
    consumer = KafkaEventLog(UNREACHABLE, timeout=5).consumer(group_id="g", topics=[TOPIC])
    assert isinstance(consumer, KafkaConsumerBase)
    consumer._consumer.close()
    consumer._consumer = fetched  # type: ignore[assignment]
    consumer._assigned = frozenset({TopicPartition(TOPIC, 0)})
    return consumer


def test_a_poll_returns_the_records_waiting_without_waiting_to_fill_its_batch() -> None:
    fetched = FetchedQueue(waiting=5, arriving=(100,))

    records = member(fetched)._consume(1_000, 1.0)

    assert [r.offset for r in records] == [0, 1, 2, 3, 4]
    assert fetched.waits == [0]


def test_a_poll_that_waited_for_its_first_record_lingers_briefly_for_the_rest() -> None:
    fetched = FetchedQueue(arriving=(1, 3, 100))

    records = member(fetched)._consume(1_000, 1.0)

    assert [r.offset for r in records] == [0, 1, 2, 3]
    first, waited, lingered = fetched.waits
    assert first == 0
    assert 0 < waited <= 1.0
    assert 0 < lingered <= BATCH_LINGER_S


def test_a_poll_takes_no_more_than_its_batch_of_the_records_waiting() -> None:
    fetched = FetchedQueue(waiting=30)
    consumer = member(fetched)

    first = consumer._consume(10, 1.0)
    second = consumer._consume(10, 1.0)

    assert [r.offset for r in first] == list(range(10))
    assert [r.offset for r in second] == list(range(10, 20))
    assert fetched.waits == [0, 0]


def test_a_poll_with_nothing_arriving_returns_nothing_after_its_timeout() -> None:
    fetched = FetchedQueue()

    assert member(fetched)._consume(10, 0.01) == []
    assert fetched.waits[0] == 0
    assert all(w <= 0.01 for w in fetched.waits)
