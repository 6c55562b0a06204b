"""Retry topics: where a batch goes when it keeps failing transiently although its dependency
answers (a deadlock, a lock or statement timeout, a serialization failure).

A record of `<topic>` that fails for the first time moves to `<topic>.retry.1`. A retry
level only *delays*: its consumer (group `<group>.retry.N`) waits until the record's
`retry.not_before`, then forwards it, unchanged, back to `<topic>`, where the job's own
consumer group processes it with the job's state (a retry group with state of its own would
compute windows from the retried records alone). Should it fail again there, it moves to
level N+1; past the last level it becomes a dead letter in `<topic>.dlq` naming its original
topic, partition and offset. A retry record keeps the key, value bytes, timestamp and
headers it was read with (minus older `retry.*` headers) plus:

    retry.original.topic / .partition / .offset   where the record was first read
    retry.attempts          attempts so far, over every level
    retry.level             the retry level it was last sent to
    retry.first_failure     ISO 8601 UTC time of the first failure
    retry.error_class       the last failure's error class
    retry.error_message     the last failure's message
    retry.not_before        epoch ms before which it must not be processed again

Moving records to another topic gives up their order relative to later records of the same
key: a retried record may reach a window after it closed, and then goes to the late topic
like any late record.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.application.dead_letters import DeadLetterPublisher, dead_letter_of
from pipeline.application.errors import TransientError, error_class_of
from pipeline.application.ports.dead_letters import DeadLetter
from pipeline.application.ports.event_log import EventLog
from pipeline.application.ports.records import Record
from pipeline.application.topic_names import dead_letter_topic, retry_level, retry_topic

RETRY_PREFIX = "retry."
H_TOPIC = "retry.original.topic"
H_PARTITION = "retry.original.partition"
H_OFFSET = "retry.original.offset"
H_ATTEMPTS = "retry.attempts"
H_LEVEL = "retry.level"
H_FIRST_FAILURE = "retry.first_failure"
H_ERROR_CLASS = "retry.error_class"
H_MESSAGE = "retry.error_message"
H_NOT_BEFORE = "retry.not_before"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryOrigin:
    """What a retry record says about its first failure."""

    topic: str
    partition: int
    offset: int
    attempts: int
    first_failed_at: datetime


def _header(record: Record, name: str) -> str | None:
    for key, value in record.headers:
        if key == name:
            return value.decode()
    return None


def retry_origin(record: Record) -> RetryOrigin | None:
    """The origin a retry record carries in its headers; None for a record that was never
    retried (or whose headers are damaged: it then counts as its own origin)."""
    topic, partition = _header(record, H_TOPIC), _header(record, H_PARTITION)
    offset, attempts = _header(record, H_OFFSET), _header(record, H_ATTEMPTS)
    first = _header(record, H_FIRST_FAILURE)
    if None in (topic, partition, offset, attempts, first):
        return None
    try:
        return RetryOrigin(
            topic=str(topic),
            partition=int(str(partition)),
            offset=int(str(offset)),
            attempts=int(str(attempts)),
            first_failed_at=datetime.fromisoformat(str(first)),
        )
    except ValueError:
        return None


def as_originally_read(record: Record) -> Record:
    """A record that went through a retry topic (read there, or forwarded back) as it was
    first read: its original topic, partition and offset, without the retry headers, so its
    dead letter is found and re-driven there. Any other record (and one whose retry headers
    are damaged) is returned as it is."""
    origin = retry_origin(record) if record.headers else None
    if origin is None:
        return record
    return dataclasses.replace(
        record,
        topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        headers=tuple(
            (name, value) for name, value in record.headers if not name.startswith(RETRY_PREFIX)
        ),
    )


def not_before(records: Sequence[Record]) -> float | None:
    """The latest `retry.not_before` of a batch, in epoch seconds (None when none has one).
    A retry topic is written in time order with one delay, so the last record decides."""
    latest: int | None = None
    for record in records:
        value = _header(record, H_NOT_BEFORE)
        if value is not None and value.isdigit():
            latest = max(latest or 0, int(value))
    return None if latest is None else latest / 1000.0


def level_of(record: Record) -> int:
    """The retry level a record was last sent to: its `retry.level` header, else the level
    of the topic it was read from (0 for a record never retried)."""
    value = _header(record, H_LEVEL)
    if value is not None and value.isdigit():
        return int(value)
    return retry_level(record.topic)[1]


def retry_headers(
    record: Record,
    origin: RetryOrigin,
    error: TransientError,
    *,
    level: int,
    not_before_ms: int,
) -> list[tuple[str, bytes]]:
    """The headers of `record`'s copy on a retry topic: its own, minus older `retry.*`
    headers, then the `retry.*` headers of this failure."""
    own = [(name, value) for name, value in record.headers if not name.startswith(RETRY_PREFIX)]
    extra = [
        (H_TOPIC, origin.topic),
        (H_PARTITION, str(origin.partition)),
        (H_OFFSET, str(origin.offset)),
        (H_ATTEMPTS, str(origin.attempts)),
        (H_LEVEL, str(level)),
        (H_FIRST_FAILURE, origin.first_failed_at.isoformat()),
        (H_ERROR_CLASS, error_class_of(error)),
        (H_MESSAGE, str(error) or type(error).__name__),
        (H_NOT_BEFORE, str(not_before_ms)),
    ]
    return [*own, *((name, value.encode()) for name, value in extra)]


class RetryRouter:
    """Moves the records of a batch that keeps failing transiently to the next retry topic
    (or, from the last level, to the dead-letter topic), acknowledged by the broker."""

    def __init__(
        self,
        log: EventLog,
        *,
        delays_s: Sequence[float],
        worker_id: str,
        group_id: str,
    ) -> None:
        self._log = log
        self._delays = list(delays_s)
        self._dead_letters = DeadLetterPublisher(log)
        self._worker_id = worker_id
        self._group_id = group_id

    @property
    def levels(self) -> int:
        """How many retry topics follow each source topic."""
        return len(self._delays)

    async def route(
        self,
        records: Sequence[Record],
        error: TransientError,
        *,
        attempts: int,
        first_failed_at: datetime,
        at: datetime,
    ) -> tuple[list[DeadLetter], Counter[str]]:
        """Publish each record to its next retry topic, or as a dead letter past the last
        level, and wait for the broker's acknowledgement of all of them. Returns the dead
        letters (to be stored with the batch's offsets) and the count per target topic."""
        letters: list[DeadLetter] = []
        sent: Counter[str] = Counter()
        for record in records:
            topic = retry_level(record.topic)[0]
            level = level_of(record)
            seen = retry_origin(record) if level else None
            origin = RetryOrigin(
                topic=seen.topic if seen else topic,
                partition=seen.partition if seen else record.partition,
                offset=seen.offset if seen else record.offset,
                attempts=(seen.attempts if seen else 0) + attempts,
                first_failed_at=seen.first_failed_at if seen else first_failed_at,
            )
            if level >= self.levels:
                letters.append(self._dead_letter(record, origin, error, at))
                continue
            target = retry_topic(origin.topic, level + 1)
            due = at + timedelta(seconds=self._delays[level])
            await self._log.publish(
                target,
                record.key,
                record.value,
                retry_headers(
                    record,
                    origin,
                    error,
                    level=level + 1,
                    not_before_ms=int(due.timestamp() * 1000),
                ),
                timestamp_ms=record.timestamp_ms,
            )
            sent[target] += 1
        if sent:
            await self._log.flush()
        if letters:
            await self._dead_letters.publish(letters)
            for letter in letters:
                sent[dead_letter_topic(letter.topic)] += 1
        return letters, sent

    def _dead_letter(
        self, record: Record, origin: RetryOrigin, error: TransientError, at: datetime
    ) -> DeadLetter:
        # Named by where it was first read, so `pipeline dlq` finds and replays it there.
        return dead_letter_of(
            as_originally_read(record),
            error,
            at=at,
            worker_id=self._worker_id,
            group_id=self._group_id,
            attempts=origin.attempts,
            first_failed_at=origin.first_failed_at,
        )
