"""Specification of a well-formed social post and of hashtag extraction."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.domain import InvalidPost, Post, hashtags_in, validate_post
from pipeline.domain.social import MAX_POST_LENGTH

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def a_post(**changes: Any) -> Post:
    post = Post(
        post_id="post-1",
        author="ada",
        text="Streaming all the things #kafka #python",
        hashtags=("kafka", "python"),
        timestamp=AT,
    )
    return dataclasses.replace(post, **changes)


def test_hashtags_are_lower_cased_without_the_hash_sign() -> None:
    assert hashtags_in("Loving #Kafka and #PYTHON") == ("kafka", "python")


def test_hashtags_are_distinct_in_order_of_first_appearance() -> None:
    assert hashtags_in("#b #a #B #c #a") == ("b", "a", "c")


def test_hashtags_end_at_punctuation_and_may_be_unicode_words() -> None:
    assert hashtags_in("#über, #data_eng! #2026.") == ("über", "data_eng", "2026")


def test_text_without_hashtags_has_none() -> None:
    assert hashtags_in("no tags here, just a # sign") == ()


def test_well_formed_post_is_returned_unchanged() -> None:
    post = a_post()

    assert validate_post(post) is post


@pytest.mark.parametrize("field", ["post_id", "author"])
def test_empty_identifier_is_rejected(field: str) -> None:
    with pytest.raises(InvalidPost, match="must not be empty"):
        validate_post(a_post(**{field: ""}))


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_post_needs_text(text: str) -> None:
    with pytest.raises(InvalidPost, match="has no text"):
        validate_post(a_post(text=text))


def test_post_may_be_exactly_the_maximum_length() -> None:
    post = a_post(text="x" * MAX_POST_LENGTH, hashtags=())

    assert validate_post(post) is post


def test_post_longer_than_the_maximum_is_rejected() -> None:
    with pytest.raises(InvalidPost, match="longer than"):
        validate_post(a_post(text="x" * (MAX_POST_LENGTH + 1)))


@pytest.mark.parametrize("tag", ["#kafka", "", "two words", "a-b", "x" * 101])
def test_malformed_hashtag_is_rejected(tag: str) -> None:
    with pytest.raises(InvalidPost, match="malformed hashtag"):
        validate_post(a_post(hashtags=(tag,)))


def test_naive_or_non_utc_time_is_a_post_error() -> None:
    with pytest.raises(InvalidPost, match="no timezone"):
        validate_post(a_post(timestamp=AT.replace(tzinfo=None)))
    with pytest.raises(InvalidPost, match="not in UTC"):
        validate_post(a_post(timestamp=AT.astimezone(timezone(timedelta(hours=1)))))
