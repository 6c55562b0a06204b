"""The social jobs' tables in SQL: trending tags of the latest hop (primary key of
social_trending), a tag's hops (its primary key), top posts and authors (posted_at index)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.sql import tables
from pipeline.adapters.sql.errors import store_errors
from pipeline.application.ports.social import AuthorEngagement, TrendingEntry
from pipeline.domain.social import PostEngagement, TagHop


def _range(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    bounds = []
    if since is not None:
        bounds.append(column >= since)
    if until is not None:
        bounds.append(column < until)
    return bounds


class SqlSocialQueries:
    """SocialQueries on a PostgreSQL or SQLite database migrated to 0010."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _all(self, statement: sa.Executable) -> list[sa.RowMapping]:
        with store_errors("reading the social tables"):
            async with self._engine.connect() as conn:
                return list((await conn.execute(statement)).mappings().all())

    async def trending(self, *, at: datetime | None, limit: int) -> list[TrendingEntry]:
        """The top tags of the latest hop ended at or before `at`."""
        t, h = tables.social_trending, tables.social_tag_history
        latest = sa.select(sa.func.max(t.c.window_start))
        if at is not None:
            latest = latest.where(t.c.window_end <= at)
        statement = (
            sa.select(t.c.tag, t.c.window_start, t.c.window_end, t.c.count, h.c.score, h.c.bursting)
            .outerjoin(h, sa.and_(h.c.tag == t.c.tag, h.c.window_start == t.c.window_start))
            .where(t.c.window_start == latest.scalar_subquery())
            .order_by(t.c.count.desc(), t.c.tag)
            .limit(limit)
        )
        return [
            TrendingEntry(
                tag=r["tag"],
                window_start=r["window_start"],
                window_end=r["window_end"],
                count=r["count"],
                score=r["score"],
                bursting=bool(r["bursting"]),
            )
            for r in await self._all(statement)
        ]

    async def tag_history(
        self, tag: str, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[TagHop]:
        """The tag's scored hops, newest first."""
        h = tables.social_tag_history
        statement = (
            sa.select(h)
            .where(h.c.tag == tag, *_range(h.c.window_start, since, until))
            .order_by(h.c.window_start.desc())
            .limit(limit)
        )
        return [
            TagHop(
                tag=r["tag"],
                window_start=r["window_start"],
                window_end=r["window_end"],
                count=r["count"],
                baseline=r["baseline"],
                score=r["score"],
                bursting=r["bursting"],
                burst_start=r["burst_start"],
            )
            for r in await self._all(statement)
        ]

    async def top_posts(
        self, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[PostEngagement]:
        """Posts with the most likes and shares."""
        e = tables.social_post_engagement
        statement = (
            sa.select(e)
            .where(*_range(e.c.posted_at, since, until))
            .order_by(e.c.engagements.desc(), e.c.post_id)
            .limit(limit)
        )
        return [
            PostEngagement(
                post_id=r["post_id"],
                author=r["author"],
                posted_at=r["posted_at"],
                likes=r["likes"],
                shares=r["shares"],
                last_engaged_at=r["last_engaged_at"],
            )
            for r in await self._all(statement)
        ]

    async def top_authors(
        self, *, since: datetime | None, until: datetime | None, limit: int
    ) -> list[AuthorEngagement]:
        """Authors by the likes and shares of their posts."""
        e = tables.social_post_engagement
        total = sa.func.sum(e.c.engagements)
        statement = (
            sa.select(
                e.c.author,
                sa.func.count().label("posts"),
                sa.func.sum(e.c.likes).label("likes"),
                sa.func.sum(e.c.shares).label("shares"),
            )
            .where(*_range(e.c.posted_at, since, until))
            .group_by(e.c.author)
            .order_by(total.desc(), e.c.author)
            .limit(limit)
        )
        return [
            AuthorEngagement(
                author=r["author"], posts=r["posts"], likes=int(r["likes"]), shares=int(r["shares"])
            )
            for r in await self._all(statement)
        ]
