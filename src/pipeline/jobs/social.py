"""The social jobs: trending hashtags with a burst score and alert, and engagement per post.

Posts and their likes and shares are keyed by post id (so the interval join of a post with
its engagement is co-partitioned); trending counts need all of a tag's uses in one
partition, so they are re-keyed by tag — explicitly, through a topic, never by an implicit
repartition:

    social-tags (Kafka authority)
    social-posts ──validate──flat_map (one use per tag)──key_by tag──→ social-hashtags
        (Post)    (rule → refused, counted: post-engagement dead-letters it)

    social (database authority)
    social-hashtags ──15-min hopping window, advancing each minute, Count, final──┐
      (HashtagUse)     ┌─────────────────────────────────────────────────────────┘
                       ├─ top k per hop ──────────────────────────────────→ trending
                       └─ sliding window of the tag's hop counts (its recent rate), scored
                             ──→ tag history;  ──burst starts──→ alerts (trending)

    post-engagement (database authority)
    social-posts ──validate──┐  (rule → DLQ, for both jobs reading the posts)
    social-engagement ─validate─ interval join (engagement within 1 h after the post)
                               ──session window per post, updates──→ engagement per post

Three jobs, not one: each has its own watermark (a task's watermark is the slowest of its
sources, and the hashtags topic runs behind the posts it is derived from), and each scales
and restarts on its own.

The top k of a hop is **per partition** of `social-hashtags` (a task ranks the tags it
holds); every tag lives in exactly one partition, so the global top k of a hop is the top k
of the union of the partitions' rankings — what the trending query takes. Engagement per
author is the database's sum over the per-post rows: an author's posts are spread over
the partitions (re-keying by author would take another topic, for one GROUP BY).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pipeline.domain import DomainError
from pipeline.domain.alerts import Alert
from pipeline.domain.social import (
    BurstRule,
    Engagement,
    EngagementKind,
    HashtagUse,
    Post,
    PostEngagement,
    TagHop,
    TrendingTag,
    hashtag_uses,
    score_hop,
    trending_alert,
    validate_engagement,
    validate_post,
)
from pipeline.domain.time import from_epoch_micros, to_epoch_micros
from pipeline.streams import (
    Aggregates,
    Collect,
    Count,
    Hopping,
    Job,
    Max,
    Ranking,
    Session,
    Sink,
    Sliding,
    Windowed,
    from_millis,
)

TAGS_STEP = "tag-counts"
TOP_STEP = "trending-top"
HISTORY_STEP = "tag-history"
JOIN_STEP = "post-engagement-join"
ENGAGEMENT_STEP = "engagement-per-post"
HISTORY_GRACE = timedelta(hours=1)
"""How far past a hop's end the watermark may be when the hop closes for it to be scored."""


TRENDING = Sink("social_trending", TrendingTag, "table social_trending: the top tags of each hop")
HISTORY = Sink("social_tag_history", TagHop, "table social_tag_history: each tag's scored hops")
ALERTS = Sink("alerts", Alert, "table alerts (outbox to system-alerts)")
ENGAGEMENT = Sink(
    "social_post_engagement",
    PostEngagement,
    "table social_post_engagement: likes and shares per post",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SocialTagsConfig:
    """What the social-tags job is parameterised by (from settings)."""

    posts_topic: str
    hashtags_topic: str
    idle_timeout: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class SocialJobConfig:
    """What the social job is parameterised by (from settings)."""

    hashtags_topic: str
    burst: BurstRule = field(default_factory=BurstRule)
    top_k: int = 10
    window_grace: timedelta = timedelta(minutes=2)
    """How long after its end a hop still takes uses (the hashtags topic interleaves the
    posts' partitions, a little out of order)."""
    idle_timeout: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class PostEngagementConfig:
    """What the post-engagement job is parameterised by (from settings)."""

    posts_topic: str
    engagement_topic: str
    within: timedelta = timedelta(hours=1)
    """How long after a post its likes and shares count for it."""
    join_grace: timedelta = timedelta(minutes=5)
    """How long the join waits beyond an interval's end for records out of order."""
    idle_timeout: timedelta = timedelta(seconds=30)


def social_tags_job(config: SocialTagsConfig) -> Job:
    """Valid posts → one record per hashtag, keyed by the tag, on the hashtags topic."""
    job = Job(
        "social-tags",
        idle_timeout=config.idle_timeout,
        description="social posts → hashtag uses keyed by tag (for trending)",
    )
    posts = job.source(
        config.posts_topic, Post, key=lambda p: p.post_id, event_time=lambda p: p.timestamp
    )
    (
        # post-engagement, which reads the posts too, dead-letters an invalid one (into the
        # table `pipeline dlq` reads); here it is refused and counted, not dead-lettered twice
        posts.validate(validate_post, rejects=(DomainError,), name="post rules", dead_letter=False)
        .flat_map(hashtag_uses, name="hashtags")
        .key_by(lambda use: use.tag, name="by-tag")
        .to(
            Sink(
                "social_hashtags",
                HashtagUse,
                "topic: one record per tag of a post",
                topic=config.hashtags_topic,
            )
        )
    )
    return job


@dataclass(frozen=True, slots=True, kw_only=True)
class _PostCounts:
    post: list[Post]
    likes: int
    shares: int
    last: float


def social_job(config: SocialJobConfig) -> Job:
    """Trending hashtags: the top k of each hop, every tag's scored hops, burst alerts."""
    job = Job(
        "social",
        idle_timeout=config.idle_timeout,
        description="hashtag uses → trending per hop, tag history, trending alerts",
    )
    rule = config.burst
    uses = job.source(
        config.hashtags_topic, HashtagUse, key=lambda u: u.tag, event_time=lambda u: u.timestamp
    )
    hops = (
        uses.window(
            Hopping(size=rule.window, advance=rule.advance, grace=config.window_grace),
            step=TAGS_STEP,
        )
        .aggregate(Count())
        .final()
    )
    hops.top_k(config.top_k, by=float, step=TOP_STEP).flat_map(trending_tags).to(TRENDING)
    # The tag's recent rate is its last hops, kept per tag by a sliding window over the
    # hop counts (its state): each hop is scored in the batch that closes it. A hop's
    # result is timed at its end, and the watermark may already be far past that when it
    # closes (one batch or an idle partition can move it a long way): the grace is how far
    # it may be, HISTORY_GRACE; a hop closed later than that goes to the late topic unscored.
    scored = (
        hops.window(Sliding(size=rule.history, grace=HISTORY_GRACE), step=HISTORY_STEP)
        .aggregate(Collect(of=lambda hop: (hop.window.start, hop.value)))
        .updates()
        .map(lambda history: scored_hop(history, rule))
    )
    scored.to(HISTORY)
    scored.filter(lambda hop: hop.burst_start, name="burst starts").map(trending_alert).to(ALERTS)

    return job


def post_engagement_job(config: PostEngagementConfig) -> Job:
    """Posts joined with their likes and shares of the hour after → engagement per post."""
    job = Job(
        "post-engagement",
        idle_timeout=config.idle_timeout,
        description="social posts ⋈ likes and shares within the hour → engagement per post",
    )
    posts = job.source(
        config.posts_topic, Post, key=lambda p: p.post_id, event_time=lambda p: p.timestamp
    ).validate(validate_post, rejects=(DomainError,), name="post rules")
    engagement = job.source(
        config.engagement_topic,
        Engagement,
        key=lambda e: e.post_id,
        event_time=lambda e: e.timestamp,
    ).validate(validate_engagement, rejects=(DomainError,), name="engagement rules")
    (
        posts.join(
            engagement,
            lambda post, e: (post, e),
            before=timedelta(0),
            after=config.within,
            grace=config.join_grace,
            step=JOIN_STEP,
        )
        # Every engagement of a post lies within the hour after it, so no two are an hour
        # apart: a session with that gap is the post's engagement (one per post).
        .window(Session(gap=config.within, grace=config.join_grace), step=ENGAGEMENT_STEP)
        .aggregate(
            Aggregates(
                into=_PostCounts,
                post=Collect(of=lambda pair: pair[0], limit=1),
                likes=Count(where=lambda pair: pair[1].kind is EngagementKind.LIKE),
                shares=Count(where=lambda pair: pair[1].kind is EngagementKind.SHARE),
                last=Max(of=lambda pair: to_epoch_micros(pair[1].timestamp)),
            )
        )
        .updates()
        .flat_map(post_engagement)
        .to(ENGAGEMENT)
    )
    return job


def trending_tags(ranking: Ranking[str, int]) -> list[TrendingTag]:
    """The rows of one partition's ranking of a hop."""
    window = ranking.window
    return [
        TrendingTag(
            tag=tag,
            window_start=window.start_time,
            window_end=window.end_time,
            count=count,
            rank=rank,
        )
        for rank, (tag, count) in enumerate(ranking.top, start=1)
    ]


def scored_hop(history: Windowed[str, list[tuple[int, int]]], rule: BurstRule) -> TagHop:
    """The latest hop of a tag's history (its sliding window ends at that hop's end), scored."""
    counts = {from_millis(start): count for start, count in history.value}
    # The sliding window ends at the hop's last millisecond (its result's time).
    current = from_millis(history.window.end) - rule.window
    return score_hop(history.key, counts, current, rule)


def post_engagement(
    session: Windowed[str, _PostCounts | None],
) -> list[PostEngagement]:
    """The row of a post's engagement session (nothing for a merged session's tombstone)."""
    counts = session.value
    if counts is None:
        return []
    post = counts.post[0]
    return [
        PostEngagement(
            post_id=post.post_id,
            author=post.author,
            posted_at=post.timestamp,
            likes=counts.likes,
            shares=counts.shares,
            last_engaged_at=from_epoch_micros(int(counts.last)),
        )
    ]
