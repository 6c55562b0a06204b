"""The pure helpers of retry topics: names, levels, headers and the not-before gate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.application.errors import StoreUnavailable
from pipeline.application.ports import Record
from pipeline.application.retries import (
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_NOT_BEFORE,
    RetryOrigin,
    level_of,
    not_before,
    retry_headers,
    retry_level,
    retry_origin,
    retry_topic,
)

FIRST = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def record(topic: str = "readings", headers: tuple[tuple[str, bytes], ...] = ()) -> Record:
    return Record(
        topic=topic,
        partition=2,
        offset=41,
        key=b"k",
        value=b"v",
        timestamp_ms=1_000,
        headers=headers,
    )


def test_retry_topics_are_numbered_from_one_after_their_source_topic() -> None:
    assert retry_topic("readings", 1) == "readings.retry.1"
    with pytest.raises(ValueError, match="start at 1"):
        retry_topic("readings", 0)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("readings", ("readings", 0)),
        ("readings.retry.1", ("readings", 1)),
        ("a.retry.2.retry.12", ("a.retry.2", 12)),
        ("readings.retry.0", ("readings.retry.0", 0)),
        ("readings.retry.x", ("readings.retry.x", 0)),
    ],
)
def test_retry_level_names_the_original_topic_and_the_level(
    topic: str, expected: tuple[str, int]
) -> None:
    assert retry_level(topic) == expected


def test_retry_headers_replace_older_retry_headers_and_round_trip_the_origin() -> None:
    origin = RetryOrigin(
        topic="readings", partition=2, offset=41, attempts=6, first_failed_at=FIRST
    )
    stale = record(headers=(("trace", b"abc"), (H_ATTEMPTS, b"1"), (H_NOT_BEFORE, b"1")))

    headers = retry_headers(
        stale, origin, StoreUnavailable("deadlock detected"), level=1, not_before_ms=5_000
    )
    copy = record(topic="readings.retry.1", headers=tuple(headers))
    forwarded = record(topic="readings", headers=tuple(headers))

    names = [name for name, _ in headers]
    assert names[0] == "trace"
    assert names.count(H_ATTEMPTS) == 1
    assert dict(headers)[H_ERROR_CLASS] == b"store_unavailable"
    assert retry_origin(copy) == origin
    assert not_before([copy]) == 5.0
    # Forwarded back to its topic, the record still says which level it came from.
    assert (level_of(copy), level_of(forwarded), level_of(stale)) == (1, 1, 0)


def test_a_record_with_damaged_retry_headers_has_no_origin() -> None:
    damaged = record(headers=((H_ATTEMPTS, b"many"),))

    assert retry_origin(damaged) is None
    assert retry_origin(record()) is None


def test_not_before_is_the_latest_of_the_batch_and_none_without_headers() -> None:
    early = record(headers=((H_NOT_BEFORE, b"2000"),))
    late = record(headers=((H_NOT_BEFORE, b"7000"),))

    assert not_before([late, early, record()]) == 7.0
    assert not_before([record()]) is None
