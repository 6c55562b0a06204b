"""`KafkaTransactionalProducer`: one librdkafka transactional producer, driven from its own
thread, that writes a batch's records and consumed offsets as one Kafka transaction.

Every call runs in the producer's single worker thread, so the transactional API is never
called concurrently and the event loop never blocks. A transaction ends in one of three
ways, each leaving the producer ready for the next one:

- committed: its records and offsets became visible together to read_committed readers;
- aborted: nothing of it is visible (`BrokerUnavailable` for a transient failure, `Fenced`
  when the group has moved on, `PublishError` for a record the broker refuses);
- in doubt: the commit request timed out and may still succeed. The next call settles it
  first, so a batch retried after `BrokerUnavailable` is never written twice.

A producer fenced by a newer instance with the same transactional.id raises
`ProducerFenced` from then on: it is the zombie, and must stop.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import structlog
from confluent_kafka import KafkaError, KafkaException, Producer

from pipeline.adapters.kafka.config import kafka_error_of, translate
from pipeline.adapters.kafka.messages import kafka_partitions
from pipeline.application.errors import (
    BrokerUnavailable,
    Fenced,
    ProducerFenced,
    PublishError,
)
from pipeline.application.kafka_authority import OutRecord
from pipeline.application.ports import TopicPartition

log = structlog.get_logger(__name__)

T = TypeVar("T")

GENERATION_MOVED: Final = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)
"""The group coordinator refused the transaction's offsets: the group has a new generation
that this member has not joined (yet), or it is no member at all."""
PRODUCER_FENCED: Final = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)
_QUEUE_FULL_WAIT_S = 0.01
_RETRY_PAUSE_S = 0.1
"""Pause before repeating a transactional call that failed retriably."""
_SERVE_EVERY = 10_000
"""Records produced between two polls that hand librdkafka's delivery reports back."""


class OwnershipMoved(Exception):
    """Raised inside `transact` when partitions of the transaction were revoked while it was
    being written: the transaction is aborted and the caller plans it again."""


class KafkaTransactionalProducer:
    """A transactional librdkafka producer (`settings` carry its transactional.id).

    `start` registers the transactional.id with the transaction coordinator, which fences
    any older producer with the same id and aborts the transaction it left open.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        *,
        timeout: float,
        client: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        self._settings = settings
        self._client = client
        """Makes the librdkafka producer (tests pass a double that fails on cue)."""
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"txn {settings['transactional.id']}"
        )
        self._producer: Producer | None = None
        self._in_doubt: object | None = None
        """The token of the transaction whose commit timed out (it may yet succeed)."""
        self._must_abort = False
        self._fenced: str | None = None
        self._closed = False

    @property
    def transactional_id(self) -> str:
        """The producer's transactional.id."""
        return str(self._settings["transactional.id"])

    async def start(self) -> None:
        """Create the producer and initialise its transactions (once; retried after a
        failure by the next call)."""
        self._check_open()
        await self._submit(self._ready)

    async def transact(
        self,
        token: object,
        records: Sequence[OutRecord],
        offsets: Mapping[TopicPartition, int],
        group_metadata: Callable[[], object],
        still_owned: Callable[[], bool],
    ) -> bool:
        """Write `records` and commit `offsets` for the group of `group_metadata()` in one
        transaction. Return False if `token`'s transaction was already committed by an
        earlier call whose commit was in doubt (nothing is written again), True otherwise.

        `still_owned()` is asked after the group metadata is read, before the offsets are
        sent: if it answers False, the transaction is aborted and `OwnershipMoved` raised.
        """
        self._check_open()
        return await self._submit(
            self._transact, token, records, offsets, group_metadata, still_owned
        )

    async def close(self) -> None:
        """Abort a transaction left open, wait for queued records, release the producer."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._submit(self._close)
        finally:
            self._executor.shutdown(wait=False)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the transactional producer {self.transactional_id} is closed")

    # ----------------------------------------------------------------- worker thread

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _ready(self) -> Producer:
        if self._fenced is not None:
            raise ProducerFenced(self._fenced)
        producer = self._producer
        if producer is None:
            producer = self._client(self._settings)
            try:
                producer.init_transactions(self._timeout)
            except KafkaException as exc:
                raise translate(
                    exc, f"cannot initialise the transactions of {self.transactional_id}"
                ) from exc
            self._producer = producer
        return producer

    def _transact(
        self,
        token: object,
        records: Sequence[OutRecord],
        offsets: Mapping[TopicPartition, int],
        group_metadata: Callable[[], object],
        still_owned: Callable[[], bool],
    ) -> bool:
        producer = self._ready()
        if self._in_doubt is not None and self._settle(producer, token):
            return False
        if self._must_abort:
            self._abort(producer)
        deadline = time.monotonic() + self._timeout
        try:
            self._write(producer, records, offsets, group_metadata, still_owned, deadline=deadline)
        except KafkaException as exc:
            raise self._failed(producer, exc, "cannot write the transaction") from exc
        except BaseException:
            self._abort_quietly(producer)
            raise
        try:
            self._until(deadline, producer.commit_transaction)
        except KafkaException as exc:
            error = kafka_error_of(exc)
            if error is not None and error.retriable():
                # Timed out: the coordinator may still commit it. Settled by the next call.
                self._in_doubt = token
                raise BrokerUnavailable(
                    f"the commit of transaction {self.transactional_id} timed out: {error.str()}"
                ) from exc
            raise self._failed(
                producer, exc, "cannot commit the transaction", committing=True
            ) from exc
        producer.poll(0)
        return True

    def _write(
        self,
        producer: Producer,
        records: Sequence[OutRecord],
        offsets: Mapping[TopicPartition, int],
        group_metadata: Callable[[], object],
        still_owned: Callable[[], bool],
        *,
        deadline: float,
    ) -> None:
        """Begin the transaction, produce the records, add the offsets."""
        producer.begin_transaction()
        self._produce(producer, records)
        # Metadata first, ownership second: a generation read here was joined after the
        # partitions it took from this member were revoked (see group_metadata).
        metadata = group_metadata()
        if not still_owned():
            raise OwnershipMoved
        if offsets:
            self._until(
                deadline,
                lambda left: producer.send_offsets_to_transaction(
                    kafka_partitions(offsets), metadata, left
                ),
            )

    def _produce(self, producer: Producer, records: Sequence[OutRecord]) -> None:
        produce = producer.produce
        for n, record in enumerate(records, 1):
            while True:
                try:
                    produce(
                        record.topic,
                        record.value,
                        record.key,
                        partition=-1 if record.partition is None else record.partition,
                        timestamp=record.timestamp_ms,
                        headers=list(record.headers) if record.headers else None,
                    )
                    break
                except BufferError:
                    producer.poll(_QUEUE_FULL_WAIT_S)
            if n % _SERVE_EVERY == 0:
                producer.poll(0)

    def _until(self, deadline: float, call: Callable[[float], object]) -> None:
        """Make a transactional call, again while it fails retriably before `deadline`."""
        while True:
            try:
                call(max(0.1, deadline - time.monotonic()))
                return
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is None or not error.retriable() or time.monotonic() >= deadline:
                    raise
            time.sleep(_RETRY_PAUSE_S)

    def _settle(self, producer: Producer, token: object) -> bool:
        """Finish the transaction in doubt; True if it was `token`'s and is committed."""
        doubtful, self._in_doubt = self._in_doubt, None
        try:
            self._until(time.monotonic() + self._timeout, producer.commit_transaction)
        except KafkaException as exc:
            error = kafka_error_of(exc)
            if error is not None and error.retriable():
                self._in_doubt = doubtful
                raise BrokerUnavailable(
                    f"the commit of transaction {self.transactional_id} is still in doubt: "
                    f"{error.str()}"
                ) from exc
            failure = self._failed(
                producer, exc, "the transaction in doubt failed", committing=True
            )
            if _same(doubtful, token) or isinstance(failure, ProducerFenced):
                raise failure from exc  # that batch is not durable: retry or re-sync
            raise Fenced(
                f"{failure}; the batch committed before this one was not made durable"
            ) from exc
        log.info("transaction in doubt committed", transactional_id=self.transactional_id)
        return _same(doubtful, token)

    def _failed(
        self, producer: Producer, exc: KafkaException, action: str, *, committing: bool = False
    ) -> Exception:
        """The error to raise for a failed transaction, after aborting it where it can be."""
        error = kafka_error_of(exc)
        detail = f"{action} ({self.transactional_id})"
        if error is not None and error.fatal():
            self._producer = None  # unusable: the next call starts a new one
            if error.code() in PRODUCER_FENCED:
                self._fenced = f"{detail}: fenced by a newer instance: {error.str()}"
                return ProducerFenced(self._fenced)
            if committing:
                # The coordinator may have committed it or not: only a re-sync can tell.
                return Fenced(f"{detail}, the outcome is unknown: {error.str()}")
            return translate(exc, detail)
        self._abort_quietly(producer)
        if error is not None and error.code() in GENERATION_MOVED:
            return Fenced(f"{detail}: the consumer group moved on: {error.str()}")
        if error is not None and (error.txn_requires_abort() or error.retriable()):
            return BrokerUnavailable(f"{detail}: {error.str()}")
        return translate(exc, detail, PublishError)

    def _abort_quietly(self, producer: Producer) -> None:
        """Abort; if the broker cannot be reached, the abort is owed to the next call."""
        try:
            self._abort(producer)
        except BrokerUnavailable as failure:
            log.warning("transaction failed", error=str(failure))

    def _abort(self, producer: Producer) -> None:
        """Abort the open transaction (if any); an abort that cannot finish is owed."""
        self._must_abort = True
        try:
            self._until(time.monotonic() + self._timeout, producer.abort_transaction)
        except KafkaException as exc:
            error = kafka_error_of(exc)
            if error is not None and error.code() == KafkaError._STATE:
                self._must_abort = False  # no transaction was open
                return
            if error is not None and error.fatal():
                # The producer is dead; the coordinator aborts what it left open (at the
                # latest after transaction.timeout.ms, at once if a newer one fenced it).
                self._must_abort = False
                self._producer = None
                if error.code() in PRODUCER_FENCED:
                    self._fenced = f"{self.transactional_id} was fenced: {error.str()}"
                return
            raise translate(exc, f"cannot abort transaction {self.transactional_id}") from exc
        self._must_abort = False

    def _close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        if self._must_abort:
            self._abort_quietly(producer)
        producer.flush(self._timeout)


def _same(doubtful: object, token: object) -> bool:
    """Whether a retried batch is the one in doubt: the same object, or an equal one."""
    return doubtful is token or doubtful == token
