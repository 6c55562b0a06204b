"""How well the `social` job's burst detector finds the social generator's labelled hashtag
bursts: the generated posts' hashtag uses run through the job on the deterministic driver,
and its trending alerts are matched with the labels.

A burst is *found* when an alert names its tag between the burst's first labelled post and
its last one plus the trending window (a hop containing burst posts closes up to then). An
alert is *right* when it is within that span of a burst of its tag. Bursts starting before
the detector knows tags (the baseline after the stream's start) are left out, as are the
alerts then (there are none by construction: a tag must be known for the baseline).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from pipeline.application.generators.social import SocialConfig, generate_social
from pipeline.domain.alerts import Alert
from pipeline.domain.social import BurstRule, Post, hashtag_uses, validate_post
from pipeline.jobs.social import SocialJobConfig, social_job
from pipeline.streams.testing import TestDriver

TOPIC = "social-hashtags"


@dataclass(frozen=True, slots=True, kw_only=True)
class BurstEvaluation:
    """Bursts labelled and found, alerts raised and right."""

    bursts: int
    found: int
    known_bursts: int
    """Bursts of a tag used at least a baseline before the burst (a brand-new tag is not
    detected while it is new, by design)."""
    known_found: int
    alerts: int
    right: int
    hours: float

    @property
    def recall(self) -> float:
        """Share of the labelled bursts an alert found."""
        return self.found / self.bursts if self.bursts else 1.0

    @property
    def precision(self) -> float:
        """Share of the alerts that name a labelled burst."""
        return self.right / self.alerts if self.alerts else 1.0


@dataclass(slots=True)
class _Burst:
    tag: str
    start: datetime
    end: datetime


def evaluate_bursts(
    *,
    seed: int,
    start: datetime,
    hours: float,
    social: SocialConfig | None = None,
    rule: BurstRule | None = None,
    batch: int = 5_000,
) -> BurstEvaluation:
    """Run `hours` of event time of network `seed` through the detector and score it."""
    social = social or SocialConfig()
    rule = rule or BurstRule()
    end = start + timedelta(hours=hours)
    config = SocialJobConfig(hashtags_topic=TOPIC, burst=rule, window_grace=timedelta(0))
    driver = TestDriver(social_job(config), partitions=3, now=start)
    bursts: dict[str, _Burst] = {}
    first_use: dict[str, datetime] = {}
    for chunk in _chunks(_posts(seed, start, end, social, bursts), batch):
        for post in chunk:
            for use in hashtag_uses(validate_post(post)):
                first_use.setdefault(use.tag, use.timestamp)
                driver.send(TOPIC, use)
        driver.run()
    driver.set_time(end + timedelta(hours=1))
    driver.advance(timedelta(hours=1))  # every partition idle: the last hops close
    alerts: list[Alert] = driver.results("alerts")
    warm = start + rule.baseline
    scored = [b for b in bursts.values() if b.start >= warm]
    slack = rule.window + rule.advance

    def matches(alert: Alert, burst: _Burst) -> bool:
        return alert.source == burst.tag and burst.start <= alert.timestamp <= burst.end + slack

    found = [b for b in scored if any(matches(a, b) for a in alerts)]
    known = [b for b in scored if first_use[b.tag] <= b.start - rule.baseline]
    counted = [a for a in alerts if a.timestamp >= warm]
    right = sum(1 for a in counted if any(matches(a, b) for b in bursts.values()))
    return BurstEvaluation(
        bursts=len(scored),
        found=len(found),
        known_bursts=len(known),
        known_found=sum(1 for b in known if b in found),
        alerts=len(counted),
        right=right,
        hours=hours,
    )


def _posts(
    seed: int, start: datetime, end: datetime, social: SocialConfig, bursts: dict[str, _Burst]
) -> Iterator[Post]:
    for generated in generate_social(seed=seed, start=start, config=social):
        event = generated.event
        if not isinstance(event, Post):
            continue
        if event.timestamp >= end:
            return
        label = generated.label
        if label is not None and label.subject is not None:
            burst = bursts.get(label.anomaly_id)
            if burst is None:
                bursts[label.anomaly_id] = _Burst(label.subject, event.timestamp, event.timestamp)
            else:
                burst.end = event.timestamp
        yield event


def _chunks(posts: Iterator[Post], size: int) -> Iterator[list[Post]]:
    while chunk := list(islice(posts, size)):
        yield chunk
