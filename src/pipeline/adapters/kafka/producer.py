"""`KafkaRecordProducer`: the publishing half of `KafkaEventLog`."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Sequence
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.adapters.kafka.config import (
    BROKER_DOWN_CODES,
    CONFIGURATION_CODES,
    kafka_error_of,
    translate,
)
from pipeline.adapters.kafka.logs import KafkaLogs, with_logs
from pipeline.application.errors import (
    BrokerUnavailable,
    ConfigurationError,
    PublishError,
    RecordTooLarge,
)
from pipeline.application.ports import OutgoingRecord

_ROOM_WAIT_S = 0.005
"""How long publish sleeps when librdkafka's queue is full before trying again."""
_POLL_EVERY = 64
"""Publishes between two polls for delivery reports: polling on every publish costs a
fifth of the throughput, and `flush` serves whatever reports are left."""
_PENDING: Final = object()
"""The outcome of a delivered record until its report arrives."""


class KafkaRecordProducer:
    """Queues records in an idempotent librdkafka producer and reports their delivery.

    `publish` only queues (librdkafka batches and sends in its own threads) and now and
    then serves delivery reports without blocking; failures are counted and raised as `PublishError`
    by the next `flush`. When the local queue is full, `publish` waits asynchronously for
    room instead of blocking the event loop.
    """

    def __init__(self, settings: dict[str, Any], logs: KafkaLogs) -> None:
        self._logs = logs
        self._producer = Producer({**with_logs(settings, logs), "error_cb": self._on_error})
        self._on_delivery_cb = self._on_delivery
        self._until_poll = _POLL_EVERY
        self._failed = 0
        self._failures_lock = threading.Lock()  # reports are served by two threads
        self._first_failure: str | None = None
        self._broker_down: str | None = None
        self._fatal: str | None = None
        self._fatal_refused = False
        """The fatal error is an authorization refusal (e.g. no WRITE ACL on any topic, so no
        idempotent producer id)."""
        self._refused: str | None = None
        """A record refused for a reason no retry can fix (an ACL: not authorized)."""

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue one record (CreateTime `timestamp_ms`, default now); raise PublishError if
        librdkafka refuses it outright."""
        if self._fatal is not None:
            raise self._fatal_error()
        header_list: list[tuple[str, str | bytes | None]] | None = (
            list(headers) if headers else None
        )
        producer = self._producer
        while True:
            try:
                producer.produce(
                    topic,
                    value,
                    key,
                    headers=header_list,
                    on_delivery=self._on_delivery_cb,
                    # 0 is librdkafka's "now".
                    timestamp=timestamp_ms or 0,
                )
                break
            except BufferError:
                # Queue full: hand delivery reports back (which frees their slots) and let
                # librdkafka's threads send while the event loop does other work.
                producer.poll(0)
                await asyncio.sleep(_ROOM_WAIT_S)
            except KafkaException as exc:
                raise translate(exc, f"cannot publish to {topic!r}", PublishError) from exc
        self._until_poll -= 1
        if not self._until_poll:
            self._until_poll = _POLL_EVERY
            producer.poll(0)

    async def deliver(
        self, records: Sequence[OutgoingRecord], timeout: float
    ) -> list[PublishError | None]:
        """Queue `records`, flush, and return each one's outcome: None when acknowledged,
        the error when refused for good (RecordTooLarge over the size limit). Raise when an
        outcome is unknown: BrokerUnavailable (no broker answered, a retriable error) or the
        PublishError of `flush`."""
        if self._fatal is not None:
            raise self._fatal_error()
        outcomes: list[object] = [_PENDING] * len(records)
        producer = self._producer
        for index, record in enumerate(records):
            while True:
                try:
                    producer.produce(
                        record.topic,
                        record.value,
                        record.key,
                        headers=list(record.headers) or None,
                        on_delivery=functools.partial(self._on_delivered, outcomes, index),
                        timestamp=record.timestamp_ms or 0,
                    )
                    break
                except BufferError:
                    producer.poll(0)
                    await asyncio.sleep(_ROOM_WAIT_S)
                except KafkaException as exc:
                    error = kafka_error_of(exc)
                    refusal = None if error is None else _refusal(record.topic, error)
                    if refusal is None:
                        raise translate(
                            exc, f"cannot publish to {record.topic!r}", PublishError
                        ) from exc
                    outcomes[index] = refusal
                    break
        await self.flush(timeout)
        refusals: list[PublishError | None] = []
        for outcome in outcomes:
            if outcome is None or isinstance(outcome, PublishError):
                refusals.append(outcome)
            elif isinstance(outcome, BrokerUnavailable):
                raise outcome  # a retriable error: the record may be on the broker or not
            else:
                raise BrokerUnavailable(f"no delivery report within {timeout}s")
        return refusals

    def _on_delivered(
        self,
        outcomes: list[object],
        index: int,
        error: KafkaError | None,
        message: Message,
    ) -> None:
        # Runs inside flush(), in its thread: one slot per record, written once.
        if error is None:
            self._broker_down = None
            outcomes[index] = None
            return
        topic = message.topic() or "?"
        if error.code() in CONFIGURATION_CODES:
            # Not authorized: the flush that served this report raises ConfigurationError.
            with self._failures_lock:
                self._refused = self._refused or f"topic {topic!r}: {error.str()}"
        outcomes[index] = _refusal(topic, error) or BrokerUnavailable(
            f"cannot publish to {topic!r}: {error.str()}"
        )

    async def flush(self, timeout: float) -> None:
        """Wait (in a worker thread) until every queued record is acknowledged.

        Raise PublishError if a record failed since the last flush, BrokerUnavailable if
        records are still queued at the timeout while no broker is reachable, else
        PublishError for the records left.
        """
        if self._fatal is not None:
            if not len(self._producer):
                return  # the records it failed were reported by the flush that saw it
            raise self._fatal_error()  # librdkafka would wait the whole timeout
        try:
            remaining = await asyncio.to_thread(self._producer.flush, timeout)
        except KafkaException as exc:
            raise translate(exc, "cannot flush the Kafka producer", PublishError) from exc
        except SystemError as exc:
            # A fatal error (e.g. no idempotent producer id: not authorized) is left pending
            # by confluent-kafka while it serves the delivery callbacks, which then fail as
            # a SystemError caused by it; error_cb is not called for it.
            fatal = kafka_error_of(exc.__cause__) if exc.__cause__ is not None else None
            if fatal is None:
                raise
            self._on_error(fatal)
            raise self._fatal_error() from exc
        with self._failures_lock:
            failed, first, refused = self._failed, self._first_failure, self._refused
            self._failed, self._first_failure, self._refused = 0, None, None
        if refused is not None:
            raise ConfigurationError(
                f"Kafka refused a record, {refused}: this principal may not write there; "
                "grant it the ACLs `pipeline acls` lists"
            )
        if failed:
            raise PublishError(f"{failed} record(s) were not delivered; first: {first}")
        if remaining:
            message = f"{remaining} record(s) still unacknowledged after {timeout}s"
            if self._broker_down is not None:
                raise BrokerUnavailable(f"{message}: {self._broker_down}")
            raise PublishError(message)

    def _fatal_error(self) -> PublishError | ConfigurationError:
        if self._fatal_refused:
            return ConfigurationError(
                f"Kafka refused the producer: {self._fatal}; this principal may not write "
                "there: grant it the ACLs `pipeline acls` lists"
            )
        return PublishError(f"the Kafka producer failed fatally: {self._fatal}")

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        # Runs inside poll()/flush(), on the event loop or the flush thread.
        if error is None:
            self._broker_down = None
            return
        with self._failures_lock:
            self._failed += 1
            if self._first_failure is None:
                self._first_failure = f"{message.topic()}: {error.str()}"
            if error.code() in CONFIGURATION_CODES and self._refused is None:
                self._refused = f"topic {message.topic()!r}: {error.str()}"

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error.str()
            self._fatal_refused = error.code() in CONFIGURATION_CODES
        elif error.code() in BROKER_DOWN_CODES:
            self._broker_down = error.str()
        self._logs.error(error)


def _refusal(topic: str, error: KafkaError) -> PublishError | None:
    """The error of a record refused for good, or None when trying again may succeed."""
    if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        return RecordTooLarge(f"too large for topic {topic!r}: {error.str()}")
    if error.retriable() or error.code() in BROKER_DOWN_CODES or error.code() in _UNKNOWN:
        return None
    return PublishError(f"refused by topic {topic!r}: {error.str()}")


_UNKNOWN: Final = frozenset({KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT_QUEUE})
"""Delivery errors after which the record may or may not be on the broker."""
