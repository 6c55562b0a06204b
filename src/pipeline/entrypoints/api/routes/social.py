"""`/api/v1/social/…`: trending hashtags now, a tag's history, top posts and authors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from pipeline.application.ports.social import AuthorEngagement, TrendingEntry
from pipeline.domain.social import PostEngagement, TagHop
from pipeline.entrypoints.api.params import earlier, parse_time, time_parameter
from pipeline.entrypoints.api.problems import problem_responses
from pipeline.entrypoints.bootstrap import Pipeline, social_queries

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many (1–1000).")]
Since = Annotated[str | None, time_parameter("From this time on (default: 24 hours ago).")]
Until = Annotated[str | None, time_parameter("Before this time (default: now).")]
# Letters, digits and `_` of any script (a hashtag's characters), written without `\w`: the
# OpenAPI document's patterns are ECMAScript's, whose `\w` is ASCII only. Other non-ASCII
# characters pass too and simply name no tag.
_TAG_PATTERN = r"^[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]{1,100}$"
PathTag = Annotated[
    str,
    PathParameter(
        description="The hashtag, without '#' (matched lower-case).",
        min_length=1,
        max_length=100,
        pattern=_TAG_PATTERN,
    ),
]
DEFAULT_RANGE = timedelta(hours=24)


class TrendingTagOut(msgspec.Struct, kw_only=True):
    """A tag of the latest hop's top k: its count in the 15-minute window and burst score."""

    tag: str
    count: int
    score: float | None
    """Burst score against the tag's own baseline (null: not scored)."""
    bursting: bool

    @classmethod
    def of(cls, entry: TrendingEntry) -> TrendingTagOut:
        """The body of `entry`."""
        return cls(tag=entry.tag, count=entry.count, score=entry.score, bursting=entry.bursting)


class TrendingOut(msgspec.Struct, kw_only=True):
    """The top tags of the latest closed hop of the trending window."""

    window_start: datetime | None
    window_end: datetime | None
    tags: list[TrendingTagOut]


class TagHopOut(msgspec.Struct, kw_only=True):
    """A tag's count in one hop, scored against its baseline."""

    window_start: datetime
    window_end: datetime
    count: int
    baseline: float
    score: float
    bursting: bool
    burst_start: bool

    @classmethod
    def of(cls, hop: TagHop) -> TagHopOut:
        """The body of `hop`."""
        return cls(
            window_start=hop.window_start,
            window_end=hop.window_end,
            count=hop.count,
            baseline=hop.baseline,
            score=hop.score,
            bursting=hop.bursting,
            burst_start=hop.burst_start,
        )


class TagHistoryOut(msgspec.Struct, kw_only=True):
    """A tag's hops, newest first."""

    tag: str
    hops: list[TagHopOut]


class PostOut(msgspec.Struct, kw_only=True):
    """A post's likes and shares within the hour after it."""

    post_id: str
    author: str
    posted_at: datetime
    likes: int
    shares: int
    last_engaged_at: datetime

    @classmethod
    def of(cls, post: PostEngagement) -> PostOut:
        """The body of `post`."""
        return cls(
            post_id=post.post_id,
            author=post.author,
            posted_at=post.posted_at,
            likes=post.likes,
            shares=post.shares,
            last_engaged_at=post.last_engaged_at,
        )


class TopPostsOut(msgspec.Struct, kw_only=True):
    """Posts of a period with the most likes and shares."""

    since: datetime
    until: datetime
    posts: list[PostOut]


class AuthorOut(msgspec.Struct, kw_only=True):
    """An author's posts of a period and the likes and shares they drew."""

    author: str
    posts: int
    likes: int
    shares: int

    @classmethod
    def of(cls, author: AuthorEngagement) -> AuthorOut:
        """The body of `author`."""
        return cls(
            author=author.author, posts=author.posts, likes=author.likes, shares=author.shares
        )


class TopAuthorsOut(msgspec.Struct, kw_only=True):
    """Authors of a period by the likes and shares of their posts."""

    since: datetime
    until: datetime
    authors: list[AuthorOut]


def _range(pipeline: Pipeline, since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """[since, until), by default the last 24 hours; an empty range answers nothing, like
    the sensor endpoints."""
    end = parse_time(until, "until") or pipeline.clock.now()
    return parse_time(since, "since") or earlier(end, DEFAULT_RANGE), end


def social_controller(*, reads_need_key: bool) -> type[Controller]:
    """The social controller; `reads_need_key` documents the 401 of its guarded reads."""
    errors = problem_responses(400, 503, *([401] if reads_need_key else []))

    class SocialController(Controller):
        """What the social jobs derived from posts and their engagement."""

        path = "/api/v1/social"
        tags = ["social"]  # noqa: RUF012 - Litestar reads it as a class attribute

        @get("/trending", summary="Trending hashtags now", responses=errors)
        async def trending(
            self,
            pipeline: NamedDependency[Pipeline],
            at: Annotated[
                str | None, time_parameter("The latest hop ended by then (default: the latest).")
            ] = None,
            limit: Annotated[
                int, QueryParameter(ge=1, le=100, description="At most this many (1–100).")
            ] = 10,
        ) -> TrendingOut:
            """The most used tags of the latest closed hop of the 15-minute window (advancing
            each minute), with their burst scores; empty before any hop closed."""
            found = await social_queries(pipeline.store).trending(
                at=parse_time(at, "at"), limit=limit
            )
            first = found[0] if found else None
            return TrendingOut(
                window_start=first.window_start if first else None,
                window_end=first.window_end if first else None,
                tags=[TrendingTagOut.of(e) for e in found],
            )

        @get("/tags/{tag:str}/history", summary="A hashtag's history", responses=errors)
        async def history(
            self,
            pipeline: NamedDependency[Pipeline],
            tag: PathTag,
            since: Since = None,
            until: Until = None,
            limit: Limit = 240,
        ) -> TagHistoryOut:
            """The tag's hops starting in [since, until), newest first: count, baseline,
            burst score, and whether it burst (an unknown tag has none)."""
            start, end = _range(pipeline, since, until)
            name = tag.lower()
            hops = await social_queries(pipeline.store).tag_history(
                name, since=start, until=end, limit=limit
            )
            return TagHistoryOut(tag=name, hops=[TagHopOut.of(h) for h in hops])

        @get("/posts/top", summary="Top posts", responses=errors)
        async def top_posts(
            self,
            pipeline: NamedDependency[Pipeline],
            since: Since = None,
            until: Until = None,
            limit: Limit = 10,
        ) -> TopPostsOut:
            """Posts published in [since, until) with the most likes and shares."""
            start, end = _range(pipeline, since, until)
            posts = await social_queries(pipeline.store).top_posts(
                since=start, until=end, limit=limit
            )
            return TopPostsOut(since=start, until=end, posts=[PostOut.of(p) for p in posts])

        @get("/authors/top", summary="Top authors", responses=errors)
        async def top_authors(
            self,
            pipeline: NamedDependency[Pipeline],
            since: Since = None,
            until: Until = None,
            limit: Limit = 10,
        ) -> TopAuthorsOut:
            """Authors whose posts of [since, until) drew the most likes and shares."""
            start, end = _range(pipeline, since, until)
            authors = await social_queries(pipeline.store).top_authors(
                since=start, until=end, limit=limit
            )
            return TopAuthorsOut(since=start, until=end, authors=[AuthorOut.of(a) for a in authors])

    return SocialController
