"""A seeded social network: authors posting with hashtags and mentions, likes and shares
arriving after the posts, and labelled hashtag bursts.

Posts arrive following a daily cycle (evenings busy). Authors are `user_00001`…; a few post a
lot and draw much engagement (a power law over author rank). A post carries 0–3 hashtags
drawn from a vocabulary whose popularity follows a power law (Zipf, exponent 1.1, over a
seeded ranking), sometimes `@mentions` of other authors, and text that says them. Its likes
and shares arrive afterwards: their number grows with the author's reach, their delays are
exponential (mean 15 minutes, a few after an hour), so a 1-hour interval join finds most.

Injected, labelled: **hashtag bursts** (`hashtag_burst`, the label's `subject` the tag): a tag
from the long tail of the vocabulary (rank 200 and beyond, or new) trends for 15 to 60
minutes, its posts rising to a peak of 2–8 % of all posts half-way and falling back. Every
post of a burst carries its label; posts that use the tag by chance do not.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import WHOLE_STREAM, AnomalyLabel, Generated, Lane
from pipeline.application.generators.cycles import (
    DAY_US,
    MINUTE_US,
    SECOND_US,
    Arrivals,
    DailyCycle,
)
from pipeline.domain.social import Engagement, EngagementKind, Post
from pipeline.domain.time import from_epoch_micros, require_utc, to_epoch_micros

SocialEvent = Post | Engagement
"""What the social generator yields: for the posts and engagement topics."""

SOCIAL_CYCLE = DailyCycle(peak_hour=21.0, depth=0.5)
"""Posting peaks at 21:00 UTC; at 09:00 UTC it is half the daily mean."""
ENGAGEMENTS_PER_POST = 3.0
"""Mean likes and shares of a post (set by the reach model below)."""
ENGAGEMENT_DELAY_MINUTES = 15.0
"""Mean delay of a like or share after its post."""
TAIL_RANK = 200
"""Bursting tags come from this popularity rank on (or are new)."""

_TOPICS = (
    "ai", "climate", "music", "football", "coffee", "travel", "photography", "science",
    "gaming", "fitness", "cooking", "books", "movies", "art", "design", "startup", "crypto",
    "space", "nature", "fashion", "health", "python", "kafka", "cats", "dogs", "running",
    "cycling", "tennis", "jazz", "vinyl", "hiking", "sunset", "beach", "winter", "summer",
    "election", "economy", "privacy", "opensource", "robotics", "vegan", "baking", "garden",
    "chess", "anime", "podcast", "history", "math", "poetry", "theatre",
)  # fmt: skip
_SUFFIXES = ("", "life", "news", "tips", "day", "love", "talk", "2026", "fans", "week")
_OPENERS = (
    "Loving the", "Can't stop thinking about", "Hot take on", "A thread about",
    "Just tried", "Anyone else into", "Today's", "Reading about", "Big news in",
)  # fmt: skip
_NOUNS = ("vibes", "update", "story", "debate", "moment", "results", "photos", "plans")


class SocialAnomalyKind(StrEnum):
    """What the social generator injects."""

    HASHTAG_BURST = "hashtag_burst"


@dataclass(frozen=True, slots=True, kw_only=True)
class SocialConfig:
    """The shape of a generated social network."""

    events_per_second: float = 200.0
    """Mean events per second over a day: posts and their likes and shares."""
    authors: int = 20_000
    bursts_per_day: float = 24.0
    """Mean hashtag bursts per day of event time (0: none)."""
    burst_minutes: tuple[float, float] = (15.0, 60.0)
    burst_peak_share: tuple[float, float] = (0.02, 0.08)
    """Share of all posts the bursting tag has at the burst's peak."""

    def __post_init__(self) -> None:
        if self.events_per_second <= 0 or self.authors < 2:
            raise ConfigurationError("a social network needs a positive rate and two authors")
        low, high = self.burst_minutes
        share_low, share_high = self.burst_peak_share
        if self.bursts_per_day < 0 or not 0 < low <= high or not 0 < share_low <= share_high < 1:
            raise ConfigurationError("bursts need a non-negative rate, durations and shares")


def hashtag_vocabulary() -> tuple[str, ...]:
    """Every tag the background posts use (topic + suffix), in a fixed order."""
    return tuple(f"{topic}{suffix}" for topic in _TOPICS for suffix in _SUFFIXES)


class _Burst:
    __slots__ = ("end", "label", "peak_rate", "start", "tag")

    def __init__(self, tag: str, label: AnomalyLabel, start: int, end: int, peak_rate: float):
        self.tag = tag
        self.label = label
        self.start = start
        self.end = end
        self.peak_rate = peak_rate
        """Posts per µs at the peak, half-way (of the lane's share of the burst)."""

    def rate(self, at: int) -> float:
        """Posts per µs at `at`: a triangle rising to the peak half-way, then falling."""
        half = (self.end - self.start) / 2.0
        return self.peak_rate * max(0.0, 1.0 - abs(at - self.start - half) / half)


class _Engaged:
    """A post still receiving likes and shares: the next arrives at the heap entry's time."""

    __slots__ = ("left", "post_id", "seen")

    def __init__(self, post_id: str, left: int) -> None:
        self.post_id = post_id
        self.left = left
        self.seen = 0


def generate_social(
    *, seed: int, start: datetime, config: SocialConfig = SocialConfig(), lane: Lane = WHOLE_STREAM
) -> Iterator[Generated[SocialEvent]]:
    """The infinite stream of network `seed` from event time `start` (tz-aware UTC), in
    non-decreasing event time: posts and engagement, keyed on the wire by post id. With a
    `lane`, only the posts of that lane (`Lane`; authors keep no state, so every lane draws
    them from all; the vocabulary and the bursts are the network's, each lane posting its
    share of a burst's posts)."""
    require_utc(start, "generator start")
    return _Network(seed, to_epoch_micros(start), config, lane).events()


@functools.lru_cache(maxsize=8)
def _reach_scale(authors: int) -> float:
    # Reach: an author of rank r (0 = most followed) draws engagement ∝ (r + 1)^-0.6,
    # normalised so that a post draws ENGAGEMENTS_PER_POST on average. Posting authors
    # are drawn as int(authors · u³): rank r posts with probability ((r+1)/n)^⅓ − (r/n)^⅓.
    reach_mean: float = sum(
        ((rank + 1) ** -0.6) * (((rank + 1) / authors) ** (1 / 3) - (rank / authors) ** (1 / 3))
        for rank in range(authors)
    )
    return ENGAGEMENTS_PER_POST / reach_mean


_Pending = tuple[int, int, "_Burst | _Engaged"]


class _Network:
    """The state of one social stream: the vocabulary, bursts under way, posts still
    drawing engagement."""

    def __init__(self, seed: int, start_us: int, config: SocialConfig, lane: Lane) -> None:
        self.config = config
        self.lane = lane
        rng = self.rng = lane.rng(f"pipeline.social/{seed}")
        self.rand = rng.random
        tags = self.tags = list(hashtag_vocabulary())
        # The popularity ranking and the bursts are the network's: drawn from the seed alone.
        lane.shared(rng, f"pipeline.social/{seed}/tags").shuffle(tags)
        self.burst_rng = lane.shared(rng, f"pipeline.social/{seed}/bursts")
        self.popularity = list(
            itertools.accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(len(tags)))
        )
        authors = self.authors = config.authors
        self.post_rate = config.events_per_second / (1.0 + ENGAGEMENTS_PER_POST)
        self.arrivals = Arrivals(
            rng, rate=self.post_rate / lane.of, cycle=SOCIAL_CYCLE, start_us=start_us
        )
        self.delay_rate = 1.0 / (ENGAGEMENT_DELAY_MINUTES * MINUTE_US)
        self.reach_scale = _reach_scale(authors)
        self.burst_rate = config.bursts_per_day / DAY_US
        self.next_burst = self.burst_after(start_us)
        self.bursts = 0
        self.pending: list[_Pending] = []
        self.order = itertools.count()
        self.posts = itertools.count()
        self.prefix = f"p{seed}-"

    def events(self) -> Iterator[Generated[SocialEvent]]:
        pending = self.pending
        pop = heapq.heappop
        arrival = self.arrivals.next()
        while True:
            if pending and pending[0][0] <= arrival:
                now, _, item = pop(pending)
                if isinstance(item, _Engaged):
                    yield Generated(event=self.engagement(item, now))
                    continue
                post = self.burst_post(item, now)
                if post is None:
                    continue
                yield Generated(event=post, label=item.label)
            else:
                now = arrival
                arrival = self.arrivals.next()
                if now >= self.next_burst:
                    self.start_burst(now)
                yield Generated(event=self.post(now))

    def schedule(self, at: int, item: _Burst | _Engaged) -> None:
        heapq.heappush(self.pending, (at, next(self.order), item))

    def popular_tag(self) -> str:
        index = bisect(self.popularity, self.rand() * self.popularity[-1])
        return self.tags[min(index, len(self.tags) - 1)]

    def post(self, now: int) -> Post:
        """A background post: an author (active ones more often), 0–3 popular tags."""
        rand = self.rand
        author_rank = int(self.authors * rand() ** 3)
        count = 0 if rand() < 0.3 else 1 if rand() < 0.55 else 2 if rand() < 0.7 else 3
        hashtags: list[str] = []
        for _ in range(count):
            tag = self.popular_tag()
            if tag not in hashtags:
                hashtags.append(tag)
        return self.publish(now, author_rank, hashtags)

    def burst_post(self, burst: _Burst, now: int) -> Post | None:
        """The post of a burst due `now` (None: the thinning skipped the candidate)."""
        if now >= burst.end:
            return None
        # Thinning at the peak rate: keep a candidate with probability rate / peak.
        self.schedule(now + self.burst_gap(burst), burst)
        rand = self.rand
        if rand() * burst.peak_rate >= burst.rate(now):
            return None
        hashtags = [burst.tag]
        if rand() < 0.5:
            other = self.popular_tag()
            if other != burst.tag:
                hashtags.append(other)
        return self.publish(now, int(self.authors * rand()), hashtags)

    def publish(self, now: int, author_rank: int, hashtags: list[str]) -> Post:
        """The post of `author_rank` with `hashtags`; its likes and shares scheduled."""
        rand = self.rand
        post_id = f"{self.prefix}{self.lane.number(next(self.posts))}"
        author = f"user_{author_rank + 1:05d}"
        mentions: tuple[str, ...] = ()
        text = f"{_OPENERS[int(rand() * len(_OPENERS))]} {_NOUNS[int(rand() * len(_NOUNS))]}"
        if hashtags:
            text += " #" + " #".join(hashtags)
        if rand() < 0.2:
            mentioned = f"user_{int(self.authors * rand() ** 3) + 1:05d}"
            if mentioned != author:
                mentions = (mentioned,)
                text += f" @{mentioned}"
        mean = self.reach_scale * (author_rank + 1) ** -0.6
        likes = int(self.rng.expovariate(1.0 / mean) + rand())  # rounded at random: mean kept
        if likes:
            gap = int(self.rng.expovariate(self.delay_rate * likes)) + 1
            self.schedule(now + gap, _Engaged(post_id, likes))
        return Post(
            post_id=post_id,
            author=author,
            text=text,
            hashtags=tuple(hashtags),
            timestamp=from_epoch_micros(now),
            mentions=mentions,
        )

    def engagement(self, engaged: _Engaged, now: int) -> Engagement:
        """The next like or share of a post; the one after it scheduled."""
        engaged.seen += 1
        engaged.left -= 1
        if engaged.left:
            # Order statistics of exponential delays: the gap to the next of the `left`
            # remaining is exponential with `left` times the rate.
            gap = int(self.rng.expovariate(self.delay_rate * engaged.left)) + 1
            self.schedule(now + gap, engaged)
        rand = self.rand
        return Engagement(
            engagement_id=f"{engaged.post_id}-e{engaged.seen}",
            post_id=engaged.post_id,
            user=f"user_{int(self.authors * rand()) + 1:05d}",
            kind=EngagementKind.LIKE if rand() < 0.85 else EngagementKind.SHARE,
            timestamp=from_epoch_micros(now),
        )

    def start_burst(self, now: int) -> None:
        """Start the burst due by `now`: a tail (or new) tag, the lane's share of its posts
        scheduled by thinning from `now` on. The burst itself (tag, span, peak) is drawn
        from the network's burst stream, the same in every lane."""
        rng = self.burst_rng
        rand = rng.random
        self.bursts += 1
        tags = self.tags
        if rand() < 0.7:
            tag = tags[TAIL_RANK + int(rand() * (len(tags) - TAIL_RANK))]
        else:
            tag = _TOPICS[int(rand() * len(_TOPICS))] + _TOPICS[int(rand() * len(_TOPICS))]
        start = self.next_burst
        low, high = self.config.burst_minutes
        end = start + int(rng.uniform(low, high) * MINUTE_US)
        peak = rng.uniform(*self.config.burst_peak_share) * self.post_rate / SECOND_US
        label = AnomalyLabel(
            kind=SocialAnomalyKind.HASHTAG_BURST,
            anomaly_id=f"burst-{self.bursts:06d}",
            subject=tag,
        )
        burst = _Burst(tag, label, start, end, peak / self.lane.of)
        self.schedule(now + self.burst_gap(burst), burst)
        self.next_burst = self.burst_after(end)

    def burst_gap(self, burst: _Burst) -> int:
        """Event time to the lane's next candidate post of `burst`."""
        return int(self.rng.expovariate(burst.peak_rate)) + 1

    def burst_after(self, moment: int) -> int:
        if self.burst_rate <= 0:
            return 2**62
        return moment + int(self.burst_rng.expovariate(self.burst_rate))
