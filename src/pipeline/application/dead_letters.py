"""Dead letters: records that cannot be processed go, unchanged, to `<topic>.dlq` with headers
saying why, instead of stopping the worker or being dropped.

A dead-letter record keeps the original key, value bytes and timestamp; its headers are the
original record's headers followed by the `dlq.*` headers below (UTF-8 text; times in ISO 8601
UTC). The same facts are stored in the database with the batch that rejected the record.

A dead letter always fits: its topic is created with room for the largest record of its
source topic plus the `dlq.*` headers (`topic_names.DERIVED_RECORD_HEADROOM_BYTES`), whose
message and stack trace are cut to a bounded size. Should the topic still refuse one as too
large (a topic whose limit could not be raised), it is published without its value, marked
`dlq.truncated`; the `dead_letters` table keeps the whole record.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import structlog

from pipeline.application.errors import PublishError, RecordTooLarge, error_class_of
from pipeline.application.ports.dead_letters import DeadLetter
from pipeline.application.ports.event_log import EventLog
from pipeline.application.ports.records import OutgoingRecord, Record
from pipeline.application.topic_names import dead_letter_topic

log = structlog.get_logger(__name__)

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
H_TRUNCATED = "dlq.truncated"
"""On a dead letter too large for its topic: what was left out (`value`, or
`key,value,headers`); the `dead_letters` table keeps the whole record."""
H_VALUE_BYTES = "dlq.original.value.bytes"
"""With `dlq.truncated`: the size of the value left out."""

MESSAGE_HEADER_BYTES: Final = 4_096
"""Longest `dlq.error.message` header (the table keeps the whole message)."""
STACK_TRACE_HEADER_BYTES: Final = 16_384
"""Longest `dlq.error.stacktrace` header, its end kept (the table keeps the whole trace)."""
NAME_HEADER_BYTES: Final = 1_024
"""Longest `dlq.worker.id` and `dlq.group.id` header."""
_CUT = " … (cut; the dead_letters table has it all) "


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
    """The `dlq.*` headers of a dead-letter record (message and stack trace bounded)."""
    headers = [
        (H_TOPIC, letter.topic.encode()),
        (H_PARTITION, str(letter.partition).encode()),
        (H_OFFSET, str(letter.offset).encode()),
        (H_ERROR_CLASS, letter.error_class.encode()),
        (H_MESSAGE, _cut(letter.message, MESSAGE_HEADER_BYTES)),
        (H_ATTEMPTS, str(letter.attempts).encode()),
        (H_FIRST_FAILURE, letter.first_failed_at.isoformat().encode()),
        (H_LAST_FAILURE, letter.last_failed_at.isoformat().encode()),
        (H_WORKER_ID, _cut(letter.worker_id, NAME_HEADER_BYTES)),
        (H_GROUP_ID, _cut(letter.group_id, NAME_HEADER_BYTES)),
    ]
    if letter.stack_trace is not None:
        trace = _cut(letter.stack_trace, STACK_TRACE_HEADER_BYTES, keep="tail")
        headers.append((H_STACK_TRACE, trace))
    return headers


def _cut(text: str, limit: int, *, keep: str = "head") -> bytes:
    """`text` as UTF-8, cut to `limit` bytes (keeping its head or its tail) and marked."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return encoded
    room = limit - len(_CUT.encode())
    # A character cut in the middle is dropped, so the header stays valid UTF-8.
    if keep == "head":
        return encoded[:room].decode(errors="ignore").encode() + _CUT.encode()
    return _CUT.encode() + encoded[-room:].decode(errors="ignore").encode()


class DeadLetterPublisher:
    """Publishes dead letters to the dead-letter topics of their source topics, on an EventLog."""

    def __init__(self, log: EventLog) -> None:
        self._log = log

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Publish `letters` (original headers first, then the `dlq.*` ones) and wait until
        the broker has acknowledged every one: only then may their records' offsets be
        stored. Raise (BrokerUnavailable, PublishError) only when that is unknown.

        What is in a record never makes this fail: a dead letter refused as too large is
        published again without its value (then also without its key and original headers),
        marked `dlq.truncated`; one refused for any other lasting reason (the topic refuses
        writes) is left to the `dead_letters` table, which stores every dead letter with its
        batch. Both are logged, once per batch."""
        if not letters:
            return
        truncated: list[DeadLetter] = []
        refused: list[tuple[DeadLetter, PublishError]] = []
        pending = list(letters)
        for omit in _OMIT_IN_TURN:
            outcomes = await self._log.deliver([_dead_letter_record(x, omit) for x in pending])
            too_large = []
            for letter, outcome in zip(pending, outcomes, strict=True):
                if outcome is None:
                    if omit:
                        truncated.append(letter)
                elif isinstance(outcome, RecordTooLarge) and omit != _OMIT_IN_TURN[-1]:
                    too_large.append(letter)
                else:
                    refused.append((letter, outcome))
            pending = too_large
            if not pending:
                break
        if truncated:
            log.warning(
                "dead letters too large for their topic published without their value; "
                "the dead_letters table keeps them whole",
                count=len(truncated),
                first=_where(truncated[0]),
            )
        if refused:
            letter, error = refused[0]
            log.error(
                "dead letters refused by their topic; kept in the dead_letters table only",
                count=len(refused),
                first=_where(letter),
                error=str(error),
            )


_OMIT_IN_TURN: Final[tuple[tuple[str, ...], ...]] = ((), ("value",), ("key", "value", "headers"))
"""What a dead letter refused as too large is published without, in turn."""


def _where(letter: DeadLetter) -> str:
    return f"{letter.topic}:{letter.partition}:{letter.offset}"


def _dead_letter_record(letter: DeadLetter, omit: Sequence[str]) -> OutgoingRecord:
    """The record of `letter` on its dead-letter topic, without the parts in `omit`."""
    headers = [*dead_letter_headers(letter)]
    if omit:
        headers += [
            (H_TRUNCATED, ",".join(omit).encode()),
            (H_VALUE_BYTES, str(len(letter.value or b"")).encode()),
        ]
    return OutgoingRecord(
        topic=dead_letter_topic(letter.topic),
        key=None if "key" in omit else letter.key,
        value=None if "value" in omit else letter.value,
        headers=(*(() if "headers" in omit else letter.headers), *headers),
        timestamp_ms=letter.timestamp_ms,
    )
