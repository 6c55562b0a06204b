"""The social jobs on the deterministic driver: hashtag uses re-keyed by tag, trending top k
per hop, burst scores with one alert per burst, posts joined with their engagement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.domain.alerts import AlertDomain, AlertKind
from pipeline.domain.social import (
    BurstRule,
    Engagement,
    EngagementKind,
    HashtagUse,
    Post,
    PostEngagement,
    TagHop,
    TrendingTag,
)
from pipeline.jobs.social import (
    PostEngagementConfig,
    SocialJobConfig,
    SocialTagsConfig,
    post_engagement_job,
    social_job,
    social_tags_job,
)
from pipeline.streams.testing import TestDriver

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POSTS, ENGAGEMENT, HASHTAGS = "social-posts", "social-engagement", "social-hashtags"
CONFIG = SocialJobConfig(hashtags_topic=HASHTAGS, top_k=2, window_grace=timedelta(0))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def a_post(post_id: str, minute: float, *tags: str, author: str = "user_00001") -> Post:
    text = "News " + " ".join(f"#{t}" for t in tags)
    return Post(post_id=post_id, author=author, text=text, hashtags=tags, timestamp=at(minute))


def a_use(tag: str, minute: float, post_id: str = "p") -> HashtagUse:
    return HashtagUse(tag=tag, post_id=post_id, author="user_00001", timestamp=at(minute))


def an_engagement(
    engagement_id: str, post_id: str, minute: float, kind: EngagementKind = EngagementKind.LIKE
) -> Engagement:
    return Engagement(
        engagement_id=engagement_id, post_id=post_id, user="user_00002", kind=kind,
        timestamp=at(minute),
    )  # fmt: skip


def driver_of(config: SocialJobConfig = CONFIG) -> TestDriver:
    return TestDriver(social_job(config), now=T0)


def engagement_driver() -> TestDriver:
    config = PostEngagementConfig(posts_topic=POSTS, engagement_topic=ENGAGEMENT)
    return TestDriver(post_engagement_job(config), now=T0)


# ------------------------------------------------------------------ social-tags


def test_a_post_becomes_one_use_per_distinct_hashtag_keyed_by_tag() -> None:
    job = social_tags_job(SocialTagsConfig(posts_topic=POSTS, hashtags_topic=HASHTAGS))
    driver = TestDriver(job, now=T0)
    driver.send(POSTS, a_post("p1", 0, "ai", "kafka", "ai"))
    driver.run()

    assert driver.results("social_hashtags") == [a_use("ai", 0, "p1"), a_use("kafka", 0, "p1")]
    assert job.sinks["social_hashtags"].topic == HASHTAGS


def test_an_invalid_post_is_one_dead_letter_over_both_jobs_that_read_the_posts() -> None:
    tags = TestDriver(
        social_tags_job(SocialTagsConfig(posts_topic=POSTS, hashtags_topic=HASHTAGS)), now=T0
    )
    engagement = engagement_driver()
    bad = Post(post_id="p1", author="a", text="   ", hashtags=("ai",), timestamp=at(0))
    for driver in (tags, engagement):
        driver.send(POSTS, bad)
        driver.run()

    assert tags.results("social_hashtags") == []
    rejections = [(r.rule, r.dead_letter) for r in (*tags.rejections, *engagement.rejections)]
    # post-engagement (whose dead letters `pipeline dlq` finds in the table) dead-letters it;
    # social-tags refuses it too, counted, without a second dead letter.
    assert sorted(rejections) == [("invalid_post", False), ("invalid_post", True)]
    assert [r.dead_letter for r in engagement.rejections] == [True]


# ------------------------------------------------------------------ trending


def test_each_closed_hop_ranks_its_top_k_tags_by_count() -> None:
    driver = driver_of()
    for minute, tag in [(0, "ai"), (0.5, "ai"), (0.2, "cats"), (0.7, "jazz"), (0.8, "ai")]:
        driver.send(HASHTAGS, a_use(tag, minute))
    driver.send(HASHTAGS, a_use("jazz", 0.9))
    driver.send(HASHTAGS, a_use("ai", 15))  # closes the hops ending by minute 15
    driver.run()

    hop = [t for t in driver.results("social_trending") if t.window_start == at(0)]
    # per partition (one here): ai 3, jazz 2, cats 1 → the top 2
    assert hop == [
        TrendingTag(tag="ai", window_start=at(0), window_end=at(15), count=3, rank=1),
        TrendingTag(tag="jazz", window_start=at(0), window_end=at(15), count=2, rank=2),
    ]
    # a use at minute 0 lies in the 15 hops starting at minutes -14 … 0; each closed
    starts = {t.window_start for t in driver.results("social_trending")}
    assert starts == {at(m) for m in range(-14, 1)}


def test_a_use_for_a_closed_hop_is_late_not_counted() -> None:
    driver = driver_of()
    driver.send(HASHTAGS, a_use("ai", 0))
    driver.send(HASHTAGS, a_use("ai", 16))
    driver.run()
    driver.send(HASHTAGS, a_use("cats", 1))  # every hop holding minute 1 closed by 16
    driver.run()

    assert all(t.tag != "cats" for t in driver.results("social_trending"))
    assert all(h.tag != "cats" for h in driver.results("social_tag_history"))
    assert [late.item.value for late in driver.late] == [a_use("cats", 1)]


def steady_then_burst(driver: TestDriver, *, burst_at: int, until: int) -> None:
    """`ai` once a minute from minute 0; from `burst_at`, 8 more a minute for 5 minutes."""
    for minute in range(until):
        driver.send(HASHTAGS, a_use("ai", minute + 0.5))
        if burst_at <= minute < burst_at + 5:
            for n in range(8):
                driver.send(HASHTAGS, a_use("ai", minute + 0.1 * n))
        driver.run()


def test_a_steady_tag_scores_near_zero_and_raises_nothing() -> None:
    driver = driver_of()
    steady_then_burst(driver, burst_at=10_000, until=200)

    scored = [h for h in driver.results("social_tag_history") if h.window_start >= at(150)]
    assert scored
    assert all(h.count == 15 and h.baseline == 15.0 and h.score == 0.0 for h in scored)
    assert driver.results("alerts") == []


def test_a_burst_raises_one_trending_alert_not_one_per_minute() -> None:
    driver = driver_of()
    steady_then_burst(driver, burst_at=160, until=200)

    bursting = [h for h in driver.results("social_tag_history") if h.bursting]
    assert len(bursting) > 5  # the burst lasts several hops …
    alerts = driver.results("alerts")
    assert len(alerts) == 1  # … and alerts once
    alert = alerts[0]
    first: TagHop = bursting[0]
    assert first.burst_start
    assert not any(h.burst_start for h in bursting[1:])
    assert (alert.kind, alert.domain, alert.source) == (
        AlertKind.TRENDING,
        AlertDomain.SOCIAL,
        "ai",
    )
    assert alert.timestamp == first.window_end
    assert alert.score == first.score
    assert first.score >= BurstRule().threshold
    # the baseline is the tag's own: 15 a hop before the burst
    assert first.baseline == 15.0


def test_a_replay_raises_the_same_alert_id() -> None:
    first, second = driver_of(), driver_of()
    steady_then_burst(first, burst_at=160, until=190)
    steady_then_burst(second, burst_at=160, until=190)

    assert [a.alert_id for a in first.results("alerts")] == [
        a.alert_id for a in second.results("alerts")
    ]


def test_a_crash_mid_stream_changes_no_result() -> None:
    calm, crashed = driver_of(), driver_of()
    steady_then_burst(calm, burst_at=150, until=170)
    for minute in range(170):
        crashed.send(HASHTAGS, a_use("ai", minute + 0.5))
        if 150 <= minute < 155:
            for n in range(8):
                crashed.send(HASHTAGS, a_use("ai", minute + 0.1 * n))
        crashed.run(commit=minute % 7 != 3)
        if minute % 7 == 3:
            crashed.crash()
    crashed.run()

    for sink in ("social_trending", "social_tag_history", "alerts"):
        assert crashed.results(sink) == calm.results(sink), sink


# ------------------------------------------------------------------ engagement


def test_engagement_within_the_hour_after_a_post_counts_for_it_and_its_author() -> None:
    driver = engagement_driver()
    driver.send(POSTS, a_post("p1", 0, "ai", author="user_00007"))
    driver.send(ENGAGEMENT, an_engagement("e1", "p1", 5))
    driver.send(ENGAGEMENT, an_engagement("e2", "p1", 59.9, EngagementKind.SHARE))
    driver.send(ENGAGEMENT, an_engagement("e3", "p1", 60.1))  # after the hour: not joined
    driver.send(ENGAGEMENT, an_engagement("e4", "other", 6))  # another post
    driver.run()

    assert driver.results("social_post_engagement")[-1] == PostEngagement(
        post_id="p1",
        author="user_00007",
        posted_at=at(0),
        likes=1,
        shares=1,
        last_engaged_at=at(59.9),
    )


def test_engagement_before_its_post_is_not_joined() -> None:
    driver = engagement_driver()
    driver.send(ENGAGEMENT, an_engagement("e1", "p1", 4))
    driver.send(POSTS, a_post("p1", 5, "ai"))
    driver.send(ENGAGEMENT, an_engagement("e2", "p1", 6))
    driver.run()

    assert [(r.likes, r.shares) for r in driver.results("social_post_engagement")] == [(1, 0)]


def test_invalid_engagement_is_a_dead_letter() -> None:
    driver = engagement_driver()
    driver.send(ENGAGEMENT, an_engagement("", "p1", 4))
    driver.run()

    assert [r.rule for r in driver.rejections] == ["invalid_engagement"]
