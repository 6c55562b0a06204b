"""Reading the social jobs' tables: trending tags, a tag's history, top posts and authors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pipeline.domain.social import PostEngagement, TagHop


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendingEntry:
    """A tag of a hop's top k, with its burst score (None if not scored: the hop closed too
    late for the history, see the social job)."""

    tag: str
    window_start: datetime
    window_end: datetime
    count: int
    score: float | None
    bursting: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorEngagement:
    """The likes and shares of an author's posts (engagement per post, summed)."""

    author: str
    posts: int
    likes: int
    shares: int


class SocialQueries(Protocol):
    """Queries over the tables of the `social` and `post-engagement` jobs."""

    async def trending(self, *, at: datetime | None, limit: int) -> list[TrendingEntry]:
        """The top tags of the latest hop that ended at or before `at` (any, if None), most
        used first (ties by tag)."""
        ...

    async def tag_history(
        self, tag: str, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[TagHop]:
        """The tag's scored hops starting in [since, until), newest first."""
        ...

    async def top_posts(
        self, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[PostEngagement]:
        """Posts published in [since, until) with the most likes and shares (ties by id)."""
        ...

    async def top_authors(
        self, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[AuthorEngagement]:
        """Authors whose posts of [since, until) drew the most likes and shares."""
        ...
