"""The social jobs' table sinks, declared (see `table_sinks`): trending tags per hop and each
tag's scored hops are final (written once), engagement per post is replaced while it grows."""

from __future__ import annotations

from typing import Any

from pipeline.adapters.sql import tables
from pipeline.adapters.sql.table_sinks import OnConflict, TableSink
from pipeline.domain.social import PostEngagement, TagHop, TrendingTag

TRENDING: TableSink[TrendingTag] = TableSink(
    tables.social_trending,
    columns=("window_start", "tag", "window_end", "count", "rank"),
    values=lambda t: (t.window_start, t.tag, t.window_end, t.count, t.rank),
)
TAG_HISTORY: TableSink[TagHop] = TableSink(
    tables.social_tag_history,
    columns=(
        "tag", "window_start", "window_end", "count", "baseline", "score", "bursting",
        "burst_start",
    ),
    values=lambda h: (
        h.tag, h.window_start, h.window_end, h.count, h.baseline, h.score, h.bursting,
        h.burst_start,
    ),
)  # fmt: skip
POST_ENGAGEMENT: TableSink[PostEngagement] = TableSink(
    tables.social_post_engagement,
    columns=(
        "post_id", "author", "posted_at", "likes", "shares", "engagements", "last_engaged_at",
    ),
    values=lambda e: (
        e.post_id, e.author, e.posted_at, e.likes, e.shares, e.likes + e.shares,
        e.last_engaged_at,
    ),
    on_conflict=OnConflict.REPLACE,
    grows="engagements",
)  # fmt: skip

SOCIAL_SINKS: dict[str, TableSink[Any]] = {
    "social_trending": TRENDING,
    "social_tag_history": TAG_HISTORY,
    "social_post_engagement": POST_ENGAGEMENT,
}
"""By the sink names of `pipeline.jobs.social`."""
