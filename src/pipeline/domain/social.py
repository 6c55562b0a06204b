"""Social media posts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pipeline.domain.errors import InvalidPost
from pipeline.domain.time import require_utc

MAX_POST_LENGTH = 5_000
_HASHTAG = re.compile(r"#(\w{1,100})")
_VALID_TAG = re.compile(r"^\w{1,100}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Post:
    """A post by an author, with its hashtags (lower-case, without '#')."""

    post_id: str
    author: str
    text: str
    hashtags: tuple[str, ...]
    timestamp: datetime


def hashtags_in(text: str) -> tuple[str, ...]:
    """The distinct hashtags of `text`, lower-cased, in order of first appearance."""
    return tuple(dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(text)))


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
    require_utc(post.timestamp, error=InvalidPost)
    return post
