"""The social jobs' tables in memory: queries over the rows the declared sinks keep."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pipeline.application.ports.social import AuthorEngagement, TrendingEntry
from pipeline.domain.social import PostEngagement, TagHop, TrendingTag


def _within(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment < until)


class InMemorySocialQueries:
    """SocialQueries over `rows` (table name → primary key → row), as the in-memory table
    sinks store them; behaves like SqlSocialQueries (tests/contract)."""

    def __init__(self, rows: dict[str, dict[tuple[Any, ...], Any]]) -> None:
        self._rows = rows

    def _table(self, name: str) -> Iterable[Any]:
        return self._rows.get(name, {}).values()

    async def trending(self, *, at: datetime | None, limit: int) -> list[TrendingEntry]:
        """The top tags of the latest hop ended at or before `at`."""
        rows: list[TrendingTag] = [
            t for t in self._table("social_trending") if at is None or t.window_end <= at
        ]
        if not rows:
            return []
        latest = max(t.window_start for t in rows)
        top = sorted((t for t in rows if t.window_start == latest), key=lambda t: (-t.count, t.tag))
        history = self._rows.get("social_tag_history", {})
        entries = []
        for t in top[:limit]:
            hop: TagHop | None = history.get((t.tag, t.window_start))
            entries.append(
                TrendingEntry(
                    tag=t.tag,
                    window_start=t.window_start,
                    window_end=t.window_end,
                    count=t.count,
                    score=None if hop is None else hop.score,
                    bursting=hop is not None and hop.bursting,
                )
            )
        return entries

    async def tag_history(
        self, tag: str, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[TagHop]:
        """The tag's scored hops, newest first."""
        hops: list[TagHop] = [
            h
            for h in self._table("social_tag_history")
            if h.tag == tag and _within(h.window_start, since, until)
        ]
        return sorted(hops, key=lambda h: h.window_start, reverse=True)[:limit]

    async def top_posts(
        self, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[PostEngagement]:
        """Posts with the most likes and shares."""
        posts: list[PostEngagement] = [
            p for p in self._table("social_post_engagement") if _within(p.posted_at, since, until)
        ]
        return sorted(posts, key=lambda p: (-(p.likes + p.shares), p.post_id))[:limit]

    async def top_authors(
        self, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[AuthorEngagement]:
        """Authors by the likes and shares of their posts."""
        totals: dict[str, list[int]] = {}
        for p in self._table("social_post_engagement"):
            if _within(p.posted_at, since, until):
                total = totals.setdefault(p.author, [0, 0, 0])
                total[0] += 1
                total[1] += p.likes
                total[2] += p.shares
        ranked = sorted(totals.items(), key=lambda item: (-(item[1][1] + item[1][2]), item[0]))
        return [
            AuthorEngagement(author=author, posts=n, likes=likes, shares=shares)
            for author, (n, likes, shares) in ranked[:limit]
        ]
