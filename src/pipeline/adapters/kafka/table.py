"""`KafkaChangelogTable`: a table materialized from a compacted Kafka topic."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Generic, TypeVar

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.adapters.kafka.config import LEADERSHIP_MOVING, kafka_error_of, translate
from pipeline.adapters.kafka.logs import KafkaLogs, with_logs
from pipeline.adapters.kafka.messages import to_record
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports.tables import KeyDecoder, ValueDecoder
from pipeline.application.tables import TableContents

K = TypeVar("K")
V = TypeVar("V")

log = structlog.get_logger(__name__)

_BATCH: Final = 5_000
_POLL_S: Final = 0.1
"""How long one consume of the table's thread waits: `close` queues behind it, so a long
wait would hold a stopping worker (idle, it is ten cheap calls a second)."""


class KafkaChangelogTable(Generic[K, V]):
    """A `ChangelogTable` over a Kafka topic.

    Its consumer is assigned every partition of the topic from the beginning, outside any
    consumer group (nothing is committed: each process reads the whole changelog), and
    reports the end of each partition (`enable.partition.eof`): `start` returns once every
    partition holding records has reached its end (an empty one, its watermarks equal, is
    not waited for), so offset gaps left by compaction or transaction markers never keep it
    waiting. librdkafka calls run in the table's own thread.
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        logs: KafkaLogs,
        topic: str,
        *,
        decode_key: KeyDecoder[K],
        decode_value: ValueDecoder[V],
        timeout: float = 30.0,
    ) -> None:
        self._logs = logs
        self._settings = with_logs(
            {
                # A fetch of a partition with nothing new answers after this long: the table
                # is read to its end (and its worker starts) within a few of them, not after
                # librdkafka's 500 ms each (measured: 0.3 s rather than 0.6–1.0 s for an
                # empty topic of three partitions).
                "fetch.wait.max.ms": "100",
                **settings,
                "group.id": f"changelog-table-{uuid.uuid4().hex[:12]}",
                "enable.partition.eof": "true",
                "auto.offset.reset": "earliest",
            },
            logs,
        )
        self._topic = topic
        self._timeout = timeout
        self._contents = TableContents(topic, decode_key=decode_key, decode_value=decode_value)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"table-{topic}")
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Read every partition up to its end (an empty one is read already), then follow
        the topic in the background."""
        loop = asyncio.get_running_loop()
        pending = set(await loop.run_in_executor(self._executor, self._open))
        deadline = time.monotonic() + self._timeout
        while pending:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"changelog topic {self._topic!r}: partitions {sorted(pending)} not read "
                    f"to their end within {self._timeout:.0f}s"
                )
            for message in await loop.run_in_executor(self._executor, self._consume):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                else:
                    self._handle(message)
        self._task = loop.create_task(self._follow(), name=f"table {self._topic}")

    def get(self, key: K) -> V | None:
        """The key's latest value, None when absent or deleted."""
        return self._contents.get(key)

    def snapshot(self) -> Mapping[K, V]:
        """Every key's latest value, as of now."""
        return self._contents.snapshot()

    @property
    def rejected(self) -> int:
        """Records without a key, or that the decoders rejected."""
        return self._contents.rejected

    async def close(self) -> None:
        """Stop following the topic and close the consumer."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        consumer = self._consumer
        if consumer is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, consumer.close)
        self._executor.shutdown(wait=False)

    def _open(self) -> list[int]:
        """Worker thread: create the consumer and assign it every partition from offset 0;
        return those holding records."""
        try:
            consumer = self._consumer = Consumer(self._settings)
            metadata = consumer.list_topics(self._topic, self._timeout)
        except KafkaException as exc:
            raise translate(exc, f"cannot read changelog topic {self._topic!r}") from exc
        described = metadata.topics.get(self._topic)
        if described is None or described.error is not None or not described.partitions:
            reason = described.error.str() if described and described.error else "no partitions"
            raise ConfigurationError(
                f"changelog topic {self._topic!r} cannot be read ({reason}): create it "
                "(`pipeline topics create`) and grant this principal READ on it"
            )
        partitions = sorted(described.partitions)
        # An empty partition is read to its end already: waiting for librdkafka to say so
        # takes a fetch that finds nothing (fetch.wait.max.ms, 0.2 s here for three).
        holding = [
            partition
            for partition in partitions
            if _holds_records(consumer, self._topic, partition, self._timeout)
        ]
        consumer.assign([KafkaTopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions])
        return holding

    def _consume(self) -> list[Message]:
        """Worker thread: the next messages and partition-end events."""
        assert self._consumer is not None
        try:
            return self._consumer.consume(_BATCH, _POLL_S)
        except KafkaException as exc:
            raise translate(exc, f"cannot read changelog topic {self._topic!r}") from exc

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                messages = await loop.run_in_executor(self._executor, self._consume)
            except BrokerUnavailable as error:
                log.warning(
                    "changelog table cannot read its topic", topic=self._topic, error=str(error)
                )
                await asyncio.sleep(1.0)
                continue
            for message in messages:
                self._handle(message)

    def _handle(self, message: Message) -> None:
        error = message.error()
        if error is None:
            self._contents.apply(to_record(message))
        elif error.code() != KafkaError._PARTITION_EOF:
            # librdkafka retries what is transient by itself; say what it reports (once).
            self._logs.error(error)


_SETTLING_S: Final = 2.0
"""How long a partition's watermarks are asked for again while its leadership settles."""
_SETTLING_RETRY_S: Final = 0.05
"""Pause between two of those requests."""


def _holds_records(
    consumer: Consumer, topic: str, partition: int, timeout: float, settling_s: float = _SETTLING_S
) -> bool:
    """Whether the partition holds records now (its low watermark below its high one). While
    its leadership settles (a topic just created: the broker answers NOT_LEADER, an unknown
    leader epoch, …) it is asked again for up to `settling_s`; a partition whose watermarks
    still cannot be had counts as holding some: it is read until librdkafka reports its end,
    which rides out such moments by itself (but takes a fetch that finds nothing)."""
    deadline = time.monotonic() + settling_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                KafkaTopicPartition(topic, partition), timeout, cached=False
            )
        except KafkaException as exc:
            error = kafka_error_of(exc)
            settling = error is not None and (
                error.retriable() or error.code() in LEADERSHIP_MOVING
            )
            if settling and time.monotonic() < deadline:
                time.sleep(_SETTLING_RETRY_S)
                continue
            return True
        return bool(high > low)
