"""The social queries behave alike in memory, on SQLite and on real PostgreSQL, over the rows
the social jobs' declared sinks write: trending now, a tag's history, top posts and authors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.memory.social_queries import InMemorySocialQueries
from pipeline.adapters.memory.table_sinks import DeclaredRows
from pipeline.adapters.sql.social_queries import SqlSocialQueries
from pipeline.adapters.sql.social_sinks import SOCIAL_SINKS
from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import CheckpointStore
from pipeline.application.ports.social import AuthorEngagement, SocialQueries, TrendingEntry
from pipeline.domain.social import PostEngagement, TagHop, TrendingTag
from tests.databases import module_database
from tests.declared_stores import emptied, memory_store, sql_store, sqlite_url
from tests.sink_batches import SinkBatches

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
P0 = TopicPartition("social-hashtags", 0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def trending(tag: str, start: int, count: int, rank: int = 1) -> TrendingTag:
    return TrendingTag(
        tag=tag, window_start=at(start), window_end=at(start + 15), count=count, rank=rank
    )


def hop(tag: str, start: int, count: int, score: float, *, bursting: bool = False) -> TagHop:
    return TagHop(
        tag=tag, window_start=at(start), window_end=at(start + 15), count=count,
        baseline=1.0, score=score, bursting=bursting, burst_start=bursting,
    )  # fmt: skip


def post(post_id: str, author: str, minute: int, likes: int, shares: int) -> PostEngagement:
    return PostEngagement(
        post_id=post_id, author=author, posted_at=at(minute), likes=likes, shares=shares,
        last_engaged_at=at(minute + 5),
    )  # fmt: skip


class World:
    def __init__(self, store: CheckpointStore, queries: SocialQueries) -> None:
        self.batches = SinkBatches(store, P0, group_id="contract")
        self.queries = queries

    async def commit(self, **rows: list[Any]) -> None:
        await self.batches.commit(rows)


class SocialQueriesContract:
    @pytest.fixture
    def world(self) -> World:
        raise NotImplementedError

    async def test_trending_is_the_latest_hop_most_used_first_with_scores(
        self, world: World
    ) -> None:
        await world.commit(
            social_trending=[trending("ai", 0, 50), trending("ai", 1, 40), trending("jazz", 1, 45)],
            social_tag_history=[hop("jazz", 1, 45, 7.5, bursting=True)],
        )

        now = await world.queries.trending(at=None, limit=10)
        earlier = await world.queries.trending(at=at(15), limit=10)

        assert now == [
            TrendingEntry(tag="jazz", window_start=at(1), window_end=at(16), count=45,
                          score=7.5, bursting=True),
            TrendingEntry(tag="ai", window_start=at(1), window_end=at(16), count=40,
                          score=None, bursting=False),
        ]  # fmt: skip
        assert [(e.tag, e.count) for e in earlier] == [("ai", 50)]

    async def test_trending_of_no_hop_is_empty_and_limit_applies(self, world: World) -> None:
        assert await world.queries.trending(at=None, limit=5) == []
        await world.commit(social_trending=[trending("a", 0, 3), trending("b", 0, 2)])

        assert [e.tag for e in await world.queries.trending(at=None, limit=1)] == ["a"]

    async def test_a_tags_history_is_newest_first_within_the_range(self, world: World) -> None:
        hops = [hop("ai", m, 10 + m, 0.5) for m in range(5)] + [hop("other", 2, 1, 0.0)]
        await world.commit(social_tag_history=hops)

        found = await world.queries.tag_history("ai", since=at(1), until=at(4), limit=10)

        assert found == [hops[3], hops[2], hops[1]]

    async def test_top_posts_and_authors_rank_by_likes_and_shares(self, world: World) -> None:
        await world.commit(
            social_post_engagement=[
                post("p1", "ann", 0, 3, 1),
                post("p2", "bob", 1, 10, 0),
                post("p3", "ann", 2, 5, 4),
                post("p4", "cy", 90, 50, 50),
            ]
        )

        posts = await world.queries.top_posts(since=at(0), until=at(60), limit=2)
        authors = await world.queries.top_authors(since=at(0), until=at(60), limit=10)

        assert [p.post_id for p in posts] == ["p2", "p3"]
        assert authors == [
            AuthorEngagement(author="ann", posts=2, likes=8, shares=5),
            AuthorEngagement(author="bob", posts=1, likes=10, shares=0),
        ]


class TestMemorySocialQueries(SocialQueriesContract):
    @pytest.fixture
    def world(self) -> World:
        rows: DeclaredRows = {}
        return World(memory_store(SOCIAL_SINKS, rows), InMemorySocialQueries(rows))


class SqlSocialQueriesSuite(SocialQueriesContract):
    @pytest.fixture
    async def world(self, sql_url: str) -> AsyncIterator[World]:
        async with emptied(sql_url, SOCIAL_SINKS) as engine:
            yield World(sql_store(engine, SOCIAL_SINKS), SqlSocialQueries(engine))


class TestSqliteSocialQueries(SqlSocialQueriesSuite):
    @pytest.fixture
    def sql_url(self, tmp_path: Path) -> str:
        return sqlite_url(tmp_path)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    yield from module_database("contract_social_queries")


@pytest.mark.integration
class TestPostgresSocialQueries(SqlSocialQueriesSuite):
    @pytest.fixture
    def sql_url(self, postgres_url: str) -> str:
        return postgres_url
