"""Specification of a well-formed social post, of hashtag and mention extraction, and of
engagement."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.domain import (
    Engagement,
    EngagementKind,
    InvalidEngagement,
    InvalidPost,
    Post,
    hashtags_in,
    mentions_in,
    validate_engagement,
    validate_post,
)
from pipeline.domain.social import MAX_POST_LENGTH, BurstRule, poisson_tail, score_hop

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


def test_mentions_are_the_distinct_at_names_without_email_addresses() -> None:
    assert mentions_in("thanks @ada and @grace, cc @ada, mail x@example.org") == ("ada", "grace")


def test_malformed_mention_is_rejected() -> None:
    with pytest.raises(InvalidPost, match="malformed mention"):
        validate_post(dataclasses.replace(a_post(), mentions=("not a name",)))


def test_engagement_needs_its_post_and_user() -> None:
    liked = Engagement(
        engagement_id="e-1", post_id="p-1", user="ada", kind=EngagementKind.LIKE, timestamp=AT
    )

    assert validate_engagement(liked) is liked
    with pytest.raises(InvalidEngagement, match="must not be empty"):
        validate_engagement(dataclasses.replace(liked, post_id=""))


# ---- burst score -------------------------------------------------------------------------

HOP = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RULE = BurstRule()


def steady(per_hop: int, *, minutes: int = 150) -> dict[datetime, int]:
    """A tag with `per_hop` uses in each hop of the `minutes` before HOP."""
    return {HOP - timedelta(minutes=m): per_hop for m in range(1, minutes + 1)}


def test_a_hop_is_scored_against_the_tags_own_baseline() -> None:
    hop = score_hop("ai", steady(15) | {HOP: 40}, HOP, RULE)

    assert (hop.count, hop.baseline) == (40, 15.0)
    assert hop.score == (40 - 15) / 4.0  # (c − b) / √(b + 1)
    assert hop.bursting
    assert hop.burst_start


def test_a_popular_tag_rising_less_than_twice_its_baseline_does_not_burst() -> None:
    hop = score_hop("ai", steady(1000) | {HOP: 1500}, HOP, RULE)

    assert hop.score > RULE.threshold
    assert not hop.bursting


def test_a_rare_tag_whose_count_chance_explains_does_not_burst_on_its_z_score() -> None:
    # 14 uses against a baseline of 3: z = 5.5, yet Poisson(3) reaches 14 about 3 times in
    # a million hops — ten times likelier than the 5-sigma level, and with hundreds of
    # rarely used tags scored every minute, a matter of hours.
    hop = score_hop("ai", steady(3) | {HOP: 14}, HOP, RULE)

    assert hop.score > RULE.threshold
    assert poisson_tail(14, 3.0) > RULE.tail
    assert not hop.bursting


def test_a_rare_tag_far_above_what_chance_explains_bursts() -> None:
    hop = score_hop("ai", steady(3) | {HOP: 20}, HOP, RULE)

    assert poisson_tail(20, 3.0) < RULE.tail
    assert hop.bursting


def test_the_poisson_tail_is_exact_and_never_underflows_into_an_error() -> None:
    assert poisson_tail(0, 4.0) == 1.0
    assert poisson_tail(1, 2.0) == pytest.approx(1 - math.exp(-2.0))
    by_terms = 1 - sum(math.exp(-3.0) * 3.0**k / math.factorial(k) for k in range(14))
    assert poisson_tail(14, 3.0) == pytest.approx(by_terms, rel=1e-6)
    assert poisson_tail(5, 0.0) == 0.0
    assert 0.0 <= poisson_tail(5_000, 10.0) < 1e-300


def test_the_tail_is_the_normal_one_at_the_threshold() -> None:
    assert RULE.tail == pytest.approx(2.8665e-7, rel=1e-4)


def test_a_tag_not_known_for_a_baseline_never_bursts() -> None:
    hop = score_hop("new", steady(1, minutes=100) | {HOP: 60}, HOP, RULE)

    assert hop.score > RULE.threshold
    assert not hop.bursting


def test_a_burst_starts_only_after_a_quiet_cooldown() -> None:
    history = steady(2) | {HOP - timedelta(minutes=10): 40, HOP: 40}

    hop = score_hop("ai", history, HOP, RULE)

    assert hop.bursting
    assert not hop.burst_start
