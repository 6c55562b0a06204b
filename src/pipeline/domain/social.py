"""Social media: posts, and the likes and shares they receive afterwards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pipeline.domain.errors import InvalidEngagement, InvalidPost
from pipeline.domain.time import require_utc

MAX_POST_LENGTH = 5_000
_HASHTAG = re.compile(r"#(\w{1,100})")
_MENTION = re.compile(r"(?<!\w)@(\w{1,100})")
_VALID_TAG = re.compile(r"^\w{1,100}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Post:
    """A post by an author, with its hashtags (lower-case, without '#') and the authors it
    mentions (without '@')."""

    post_id: str
    author: str
    text: str
    hashtags: tuple[str, ...]
    timestamp: datetime
    mentions: tuple[str, ...] = ()


class EngagementKind(StrEnum):
    """How a user engaged with a post."""

    LIKE = "like"
    SHARE = "share"


@dataclass(frozen=True, slots=True, kw_only=True)
class Engagement:
    """A like or share of a post by a user, some time after the post."""

    engagement_id: str
    post_id: str
    user: str
    kind: EngagementKind
    timestamp: datetime


def hashtags_in(text: str) -> tuple[str, ...]:
    """The distinct hashtags of `text`, lower-cased, in order of first appearance."""
    return tuple(dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(text)))


def mentions_in(text: str) -> tuple[str, ...]:
    """The distinct `@names` of `text` (without '@'), in order of first appearance."""
    return tuple(dict.fromkeys(_MENTION.findall(text)))


def validate_post(post: Post) -> Post:
    """Return `post` if it is well formed, else raise InvalidPost naming the rule."""
    if not post.post_id or not post.author:
        raise InvalidPost("post_id and author must not be empty")
    if not post.text.strip():
        raise InvalidPost(f"post {post.post_id} has no text")
    if len(post.text) > MAX_POST_LENGTH:
        raise InvalidPost(f"post {post.post_id} is longer than {MAX_POST_LENGTH} characters")
    for tag in post.hashtags:
        if not _VALID_TAG.fullmatch(tag):
            raise InvalidPost(f"post {post.post_id}: malformed hashtag {tag!r}")
    for name in post.mentions:
        if not _VALID_TAG.fullmatch(name):
            raise InvalidPost(f"post {post.post_id}: malformed mention {name!r}")
    require_utc(post.timestamp, error=InvalidPost)
    return post


def validate_engagement(engagement: Engagement) -> Engagement:
    """Return `engagement` if it is well formed, else raise InvalidEngagement."""
    if not engagement.engagement_id or not engagement.post_id or not engagement.user:
        raise InvalidEngagement("engagement_id, post_id and user must not be empty")
    require_utc(engagement.timestamp, error=InvalidEngagement)
    return engagement
