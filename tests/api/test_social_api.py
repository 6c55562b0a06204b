"""`/api/v1/social/…`: trending now, a tag's history, top posts and authors, from the rows the
social jobs commit; parameters validated with problem details."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.adapters.clock import ManualClock
from pipeline.application.ports import TopicPartition
from pipeline.domain.social import PostEngagement, TagHop, TrendingTag
from pipeline.entrypoints.bootstrap import Pipeline
from tests.sink_batches import SinkBatches

Client = AsyncTestClient[Litestar]


async def commit(pipeline: Pipeline, **rows: list[Any]) -> None:
    """Commit `rows` by sink name as the social jobs' checkpoint does."""
    part = TopicPartition("social-hashtags", 0)
    await SinkBatches(pipeline.checkpoint, part, group_id="api-test").commit(rows)


def hop_start(clock: ManualClock, minutes_ago: int) -> datetime:
    return clock.now().replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)


async def test_trending_lists_the_latest_hops_tags_with_scores(
    client: Client, pipeline: Pipeline, clock: ManualClock
) -> None:
    old, new = hop_start(clock, 17), hop_start(clock, 16)
    end = new + timedelta(minutes=15)
    await commit(
        pipeline,
        social_trending=[
            TrendingTag(tag="ai", window_start=old, window_end=old + timedelta(minutes=15),
                        count=99, rank=1),
            TrendingTag(tag="ai", window_start=new, window_end=end, count=30, rank=1),
            TrendingTag(tag="jazzvinyl", window_start=new, window_end=end, count=40, rank=2),
        ],
        social_tag_history=[
            TagHop(tag="jazzvinyl", window_start=new, window_end=end, count=40, baseline=1.0,
                   score=27.6, bursting=True, burst_start=True),
        ],
    )  # fmt: skip

    response = await client.get("/api/v1/social/trending", params={"limit": 5})

    assert response.status_code == 200
    body = response.json()
    assert body["tags"] == [
        {"tag": "jazzvinyl", "count": 40, "score": 27.6, "bursting": True},
        {"tag": "ai", "count": 30, "score": None, "bursting": False},
    ]
    assert body["window_start"] == new.isoformat().replace("+00:00", "Z")


async def test_trending_before_any_hop_is_empty(client: Client) -> None:
    response = await client.get("/api/v1/social/trending")

    assert response.status_code == 200
    assert response.json() == {"window_start": None, "window_end": None, "tags": []}


async def test_a_tags_history_is_newest_first(
    client: Client, pipeline: Pipeline, clock: ManualClock
) -> None:
    hops = [
        TagHop(tag="ai", window_start=hop_start(clock, 30 - m), window_end=hop_start(clock, 15 - m),
               count=m, baseline=2.0, score=0.1 * m, bursting=False, burst_start=False)
        for m in range(3)
    ]  # fmt: skip
    await commit(pipeline, social_tag_history=hops)

    response = await client.get("/api/v1/social/tags/AI/history")

    assert response.status_code == 200
    body = response.json()
    assert body["tag"] == "ai"
    assert [h["count"] for h in body["hops"]] == [2, 1, 0]


async def test_top_posts_and_authors_rank_by_engagement(
    client: Client, pipeline: Pipeline, clock: ManualClock
) -> None:
    posted = clock.now() - timedelta(hours=2)
    rows = [
        PostEngagement(post_id=f"p{n}", author=author, posted_at=posted, likes=likes, shares=1,
                       last_engaged_at=posted + timedelta(minutes=5))
        for n, (author, likes) in enumerate([("ann", 3), ("bob", 9), ("ann", 4)])
    ]  # fmt: skip
    await commit(pipeline, social_post_engagement=rows)

    posts = (await client.get("/api/v1/social/posts/top", params={"limit": 2})).json()
    authors = (await client.get("/api/v1/social/authors/top")).json()

    assert [p["post_id"] for p in posts["posts"]] == ["p1", "p2"]
    assert [(a["author"], a["posts"], a["likes"]) for a in authors["authors"]] == [
        ("bob", 1, 9),
        ("ann", 2, 7),
    ]


async def test_bad_parameters_are_problem_details(client: Client) -> None:
    for url, params in [
        ("/api/v1/social/trending", {"limit": "0"}),
        ("/api/v1/social/trending", {"at": "yesterday"}),
        ("/api/v1/social/tags/not a tag/history", {}),
        ("/api/v1/social/posts/top", {"since": "not a time"}),
    ]:  # fmt: skip
        response = await client.get(url, params=params)

        assert response.status_code == 400, url
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_empty_range_answers_nothing(client: Client) -> None:
    response = await client.get(
        "/api/v1/social/posts/top",
        params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )

    assert response.status_code == 200
    assert response.json()["posts"] == []
