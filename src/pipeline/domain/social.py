"""Social media: posts, and the likes and shares they receive afterwards."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pipeline.domain.alerts import Alert, AlertDomain, AlertKind, Severity, alert_id_for
from pipeline.domain.errors import InvalidEngagement, InvalidPost
from pipeline.domain.time import require_utc

MAX_POST_LENGTH = 5_000
_HASHTAG = re.compile(r"#(\w{1,100})")
_MENTION = re.compile(r"(?<!\w)@(\w{1,100})")
_VALID_TAG = re.compile(r"^\w{1,100}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Post:
    """A post by an author, with its hashtags (lower-case, without '#') and the authors it
    mentions (without '@')."""

    post_id: str
    author: str
    text: str
    hashtags: tuple[str, ...]
    timestamp: datetime
    mentions: tuple[str, ...] = ()


class EngagementKind(StrEnum):
    """How a user engaged with a post."""

    LIKE = "like"
    SHARE = "share"


@dataclass(frozen=True, slots=True, kw_only=True)
class Engagement:
    """A like or share of a post by a user, some time after the post."""

    engagement_id: str
    post_id: str
    user: str
    kind: EngagementKind
    timestamp: datetime


def hashtags_in(text: str) -> tuple[str, ...]:
    """The distinct hashtags of `text`, lower-cased, in order of first appearance."""
    return tuple(dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(text)))


def mentions_in(text: str) -> tuple[str, ...]:
    """The distinct `@names` of `text` (without '@'), in order of first appearance."""
    return tuple(dict.fromkeys(_MENTION.findall(text)))


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
    for name in post.mentions:
        if not _VALID_TAG.fullmatch(name):
            raise InvalidPost(f"post {post.post_id}: malformed mention {name!r}")
    require_utc(post.timestamp, error=InvalidPost)
    return post


def validate_engagement(engagement: Engagement) -> Engagement:
    """Return `engagement` if it is well formed, else raise InvalidEngagement."""
    if not engagement.engagement_id or not engagement.post_id or not engagement.user:
        raise InvalidEngagement("engagement_id, post_id and user must not be empty")
    require_utc(engagement.timestamp, error=InvalidEngagement)
    return engagement


@dataclass(frozen=True, slots=True, kw_only=True)
class HashtagUse:
    """One hashtag of one post: what trending counts. On the wire it is keyed by the tag,
    so that all of a tag's uses meet in one partition."""

    tag: str
    post_id: str
    author: str
    timestamp: datetime


def hashtag_uses(post: Post) -> tuple[HashtagUse, ...]:
    """One use per distinct hashtag of `post`, timed at the post."""
    return tuple(
        HashtagUse(tag=tag, post_id=post.post_id, author=post.author, timestamp=post.timestamp)
        for tag in dict.fromkeys(post.hashtags)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class BurstRule:
    """When a hashtag bursts: its count in a hop (`window` long, one every `advance`) is
    scored against its own baseline, the mean count of its hops that start between
    `baseline` and `window` before this one (the hops just before it overlap it, so they
    are left out; a hop without a use counts 0):

        score = (count − baseline) / √(baseline + 1)

    (a Poisson z-score; the +1 keeps a tag rarely used from scoring infinity). A hop bursts
    when its score reaches `threshold`, a count that high is at least as improbable under
    Poisson(baseline) as a `threshold`-sigma normal deviation (`tail`: the z-score's normal
    approximation understates a Poisson's upper tail by orders of magnitude for the small
    baselines of the many rarely used tags, which then burst by chance), its count reaches
    `min_count` and `min_ratio` times its baseline, and the tag was used at least
    `baseline` before the hop: a tag the detector has not known that long may be new, or
    the stream may have just begun — the two look alike, so it is scored but never bursts
    (no alert storm when a job starts; a brand-new tag is not detected while it is new). A
    burst *starts* at a bursting hop when none of the hops of the `cooldown` before it
    burst: one alert per burst, not one per minute of it."""

    window: timedelta = timedelta(minutes=15)
    advance: timedelta = timedelta(minutes=1)
    baseline: timedelta = timedelta(hours=2)
    cooldown: timedelta = timedelta(minutes=30)
    threshold: float = 5.0
    min_count: int = 10
    min_ratio: float = 2.0
    """A bursting hop also counts at least this many times its baseline: a popular tag
    rising with the day's traffic scores high on its large counts alone."""

    def __post_init__(self) -> None:
        steps = (self.window, self.baseline, self.cooldown)
        if self.advance <= timedelta(0) or any(s % self.advance for s in steps):
            raise ValueError("burst rule spans must be positive multiples of the advance")
        if self.baseline <= self.window or self.threshold <= 0 or self.min_count < 1:
            raise ValueError("the baseline must outlast the window; threshold, min_count > 0")
        if self.min_ratio < 1:
            raise ValueError("min_ratio must be at least 1")

    @property
    def tail(self) -> float:
        """The one-sided normal tail probability at `threshold` (2.9e-7 at 5): the most
        probable a hop's count may be under Poisson(baseline) and still burst."""
        return 0.5 * math.erfc(self.threshold / math.sqrt(2.0))

    @property
    def history(self) -> timedelta:
        """How far back (from a hop's start) its score and burst start look."""
        return self.baseline + self.cooldown


@dataclass(frozen=True, slots=True, kw_only=True)
class TagHop:
    """A hashtag's count in one hop of the trending window, scored against its baseline."""

    tag: str
    window_start: datetime
    window_end: datetime
    count: int
    baseline: float
    score: float
    bursting: bool
    burst_start: bool
    """This hop starts a burst (no hop of the cooldown before it burst): it raises the alert."""


def score_hop(
    tag: str, history: Mapping[datetime, int], current: datetime, rule: BurstRule
) -> TagHop:
    """Score the hop of `tag` starting at `current`, given the counts of its hops by start
    (at least the `rule.history` before `current`; hops absent count 0)."""
    earliest = min(history, default=current)
    advance = rule.advance
    span, window = rule.baseline // advance, rule.window // advance
    cooldown = rule.cooldown // advance

    def count(position: int) -> int:
        return history.get(current + position * advance, 0)

    # Positions count hops back from this one (0); prefix[i] is the sum of the counts of
    # the positions from `first` to first + i − 1: any hop's baseline is two lookups.
    first = -cooldown - span
    prefix = [0]
    for position in range(first, 1):
        prefix.append(prefix[-1] + count(position))

    def scored(position: int) -> tuple[float, float]:
        low, high = position - span - first, position - window - first
        baseline = (prefix[high] - prefix[low]) / (span - window)
        return baseline, (count(position) - baseline) / math.sqrt(baseline + 1.0)

    def bursts(position: int) -> bool:
        if earliest > current + position * advance - rule.baseline:
            return False  # not known for a baseline yet
        n = count(position)
        baseline, score = scored(position)
        return (
            n >= rule.min_count
            and n >= rule.min_ratio * baseline
            and score >= rule.threshold
            and poisson_tail(n, baseline) <= rule.tail
        )

    baseline, score = scored(0)
    bursting = bursts(0)
    return TagHop(
        tag=tag,
        window_start=current,
        window_end=current + rule.window,
        count=count(0),
        baseline=baseline,
        score=score,
        bursting=bursting,
        burst_start=bursting and not any(bursts(p) for p in range(-cooldown, 0)),
    )


def poisson_tail(count: int, mean: float) -> float:
    """P(X ≥ count) for X ~ Poisson(mean): summed from `count` up, in log space at first
    (the terms underflow for counts far above the mean), until the terms stop mattering."""
    if count <= 0:
        return 1.0
    if mean <= 0.0:
        return 0.0
    term = math.exp(count * math.log(mean) - mean - math.lgamma(count + 1))
    total, k = 0.0, count
    while term > total * 1e-12:
        total += term
        k += 1
        term *= mean / k
    return min(total, 1.0)


def trending_alert(hop: TagHop) -> Alert:
    """The trending alert of a hop that starts a burst: its id follows from the tag and the
    hop, so a replay raises the same one."""
    return Alert(
        alert_id=alert_id_for(hop.tag, hop.window_end, AlertKind.TRENDING),
        source=hop.tag,
        kind=AlertKind.TRENDING,
        severity=Severity.WARNING,
        message=(
            f"#{hop.tag} is trending: {hop.count} posts in the {hop.window_start:%H:%M}–"
            f"{hop.window_end:%H:%M} window against a baseline of {hop.baseline:.1f} "
            f"(score {hop.score:.1f})"
        ),
        timestamp=hop.window_end,
        domain=AlertDomain.SOCIAL,
        value=float(hop.count),
        threshold=hop.baseline,
        score=hop.score,
        reasons=("hashtag_burst",),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendingTag:
    """A tag among the top k of its partition in one hop."""

    tag: str
    window_start: datetime
    window_end: datetime
    count: int
    rank: int
    """1 = the most used in its partition of the hashtags topic."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PostEngagement:
    """The likes and shares a post received within the join interval after it."""

    post_id: str
    author: str
    posted_at: datetime
    likes: int
    shares: int
    last_engaged_at: datetime
