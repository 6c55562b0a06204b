"""Dead letters: records that cannot be processed go, unchanged, to `<topic>.dlq` with headers
saying why, instead of stopping the worker or being dropped.

A dead-letter record keeps the original key, value bytes and timestamp; its headers are the
original record's headers followed by the `dlq.*` headers below (UTF-8 text; times in ISO 8601
UTC). The same facts are stored in the database with the batch that rejected the record.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import datetime

from pipeline.application.errors import error_class_of
from pipeline.application.ports.dead_letters import DeadLetter
from pipeline.application.ports.event_log import EventLog
from pipeline.application.ports.records import Record
from pipeline.application.topic_names import dead_letter_topic

H_TOPIC = "dlq.original.topic"
H_PARTITION = "dlq.original.partition"
H_OFFSET = "dlq.original.offset"
H_ERROR_CLASS = "dlq.error.class"
H_MESSAGE = "dlq.error.message"
H_STACK_TRACE = "dlq.error.stacktrace"
H_ATTEMPTS = "dlq.attempts"
H_FIRST_FAILURE = "dlq.first.failure"
H_LAST_FAILURE = "dlq.last.failure"
H_WORKER_ID = "dlq.worker.id"
H_GROUP_ID = "dlq.group.id"


def dead_letter_of(
    record: Record,
    error: BaseException,
    *,
    at: datetime,
    worker_id: str,
    group_id: str,
    attempts: int = 1,
    first_failed_at: datetime | None = None,
) -> DeadLetter:
    """The dead letter of `record`, which failed with `error` (last at `at`)."""
    trace = None
    if error.__traceback__ is not None:
        trace = _printable("".join(traceback.format_exception(error)).rstrip())
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        timestamp_ms=record.timestamp_ms,
        error_class=error_class_of(error),
        message=_printable(str(error) or type(error).__name__),
        stack_trace=trace,
        attempts=attempts,
        first_failed_at=first_failed_at or at,
        last_failed_at=at,
        worker_id=worker_id,
        group_id=group_id,
        headers=record.headers,
    )


def _printable(text: str) -> str:
    # A message can quote the record's own text; PostgreSQL text cannot hold NUL, and a dead
    # letter that cannot be stored would stop the worker it exists to protect.
    return text.replace("\x00", "\\x00")


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The `dlq.*` headers of a dead-letter record."""
    headers = [
        (H_TOPIC, letter.topic),
        (H_PARTITION, str(letter.partition)),
        (H_OFFSET, str(letter.offset)),
        (H_ERROR_CLASS, letter.error_class),
        (H_MESSAGE, letter.message),
        (H_ATTEMPTS, str(letter.attempts)),
        (H_FIRST_FAILURE, letter.first_failed_at.isoformat()),
        (H_LAST_FAILURE, letter.last_failed_at.isoformat()),
        (H_WORKER_ID, letter.worker_id),
        (H_GROUP_ID, letter.group_id),
    ]
    if letter.stack_trace is not None:
        headers.append((H_STACK_TRACE, letter.stack_trace))
    return [(name, value.encode()) for name, value in headers]


class DeadLetterPublisher:
    """Publishes dead letters to the dead-letter topics of their source topics, on an EventLog."""

    def __init__(self, log: EventLog) -> None:
        self._log = log

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Publish `letters` (original headers first, then the `dlq.*` ones) and wait until
        the broker has acknowledged every one, raising PublishError otherwise: only then may
        the offsets of their records be stored."""
        for letter in letters:
            await self._log.publish(
                dead_letter_topic(letter.topic),
                letter.key,
                letter.value,
                [*letter.headers, *dead_letter_headers(letter)],
                timestamp_ms=letter.timestamp_ms,
            )
        if letters:
            await self._log.flush()
