"""Producing the shop, payment and social streams as `pipeline produce` runs them.

Each event goes to its domain's topic for its type, Avro-encoded with the registry, keyed so
that the jobs joining these streams find what they join in one partition:

    shop      ShopEvent → ecommerce-events, by session id (a session's events in order, in
              one partition: session windows and funnels need no repartition)
    payments  Transaction → transactions, AccountProfile → accounts (compacted) and
              PaymentOutcome → payment-outcomes, all by account id (the stream–table join
              with profiles and the interval join with outcomes are co-partitioned)
    social    Post → social-posts and Engagement → social-engagement, by post id (the
              interval join of posts with their likes and shares is co-partitioned)

An injected anomaly's ground-truth label travels in the record's headers (`label_headers`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.adapters.avro import (
    AvroCodec,
    account_profile_codec,
    engagement_codec,
    payment_outcome_codec,
    post_codec,
    shop_event_codec,
    transaction_codec,
)
from pipeline.adapters.clock import MonotonicTimer
from pipeline.application.generators.base import Lane, label_headers
from pipeline.application.generators.production import planned_events, released
from pipeline.application.generators.simulations import SIMULATIONS
from pipeline.application.ports import Timer
from pipeline.domain.payments import AccountProfile, PaymentOutcome, Transaction
from pipeline.domain.shop import ShopEvent
from pipeline.domain.social import Engagement, Post
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.replay import Progress

__all__ = ["DOMAINS", "produce_simulated", "routes"]

DOMAINS = tuple(SIMULATIONS)
"""The domains `produce_simulated` knows: shop, payments, social."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where events of one type go: the topic, its codec, the key."""

    topic: str
    codec: AvroCodec[Any]
    key: Callable[[Any], str]


def routes(pipeline: Pipeline, domain: str) -> Mapping[type, Route]:
    """The routes of `domain`'s event types, with codecs on `pipeline`'s registry."""
    topics = pipeline.settings.topics
    registry = pipeline.registry
    if domain == "shop":
        return {
            ShopEvent: Route(
                topics.ecommerce_events,
                shop_event_codec(registry, topics.ecommerce_events),
                lambda event: event.session_id,
            )
        }
    if domain == "payments":
        return {
            Transaction: Route(
                topics.transactions,
                transaction_codec(registry, topics.transactions),
                lambda tx: tx.account_id,
            ),
            AccountProfile: Route(
                topics.accounts,
                account_profile_codec(registry, topics.accounts),
                lambda profile: profile.account_id,
            ),
            PaymentOutcome: Route(
                topics.payment_outcomes,
                payment_outcome_codec(registry, topics.payment_outcomes),
                lambda outcome: outcome.account_id,
            ),
        }
    if domain == "social":
        return {
            Post: Route(
                topics.social_posts,
                post_codec(registry, topics.social_posts),
                lambda post: post.post_id,
            ),
            Engagement: Route(
                topics.social_engagement,
                engagement_codec(registry, topics.social_engagement),
                lambda engagement: engagement.post_id,
            ),
        }
    raise ValueError(f"no simulated domain {domain!r}; known: {', '.join(DOMAINS)}")


async def produce_simulated(
    pipeline: Pipeline,
    domain: str,
    *,
    count: int | None,
    rate: float,
    seed: int,
    stop: asyncio.Event | None = None,
    progress: Progress | None = None,
    timer: Timer | None = None,
    now: datetime | None = None,
    lanes: Sequence[Lane] | None = None,
) -> Counter[str]:
    """Publish `count` generated events of `domain` (None: until `stop` is set); return how
    many went to each topic. `rate` is the mean events per second over a day (0: as fast
    as possible, laid out to end shortly before now). Either way an event is published only
    once `timer` (default: the monotonic clock) has run as long as its event time lies past
    `now` (default: the pipeline's clock), so event time never runs ahead of the clock
    (`generators.production`). With `lanes`, only those lanes of the run are generated and
    published (`production.lanes_of`): the lanes of one seed, count and `now`, published by
    several processes, together publish the one-process run."""
    now = now or pipeline.clock.now()
    stream = planned_events(
        SIMULATIONS[domain], seed=seed, now=now, count=count, rate=rate, lanes=lanes
    )
    routing = routes(pipeline, domain)
    await pipeline.ensure_topics()
    log = pipeline.publishing_log
    stop = stop or asyncio.Event()
    sent: Counter[str] = Counter()
    total = 0
    async for due in released(
        stream, timer=timer or MonotonicTimer(), stop=stop, event_time=_event_time, start=now
    ):
        # What is due together is encoded per event type in one call, then queued in order;
        # only a labelled event has headers.
        events = [item.event for item in due]
        routed = [routing[type(event)] for event in events]
        keys = [route.key(event).encode() for route, event in zip(routed, events, strict=True)]
        values = await _encoded(events, routed, routing)
        topics = [route.topic for route in routed]
        publish = log.publish
        for item, topic, key, value in zip(due, topics, keys, values, strict=True):
            label = item.label
            await publish(topic, key, value, () if label is None else label_headers(label))
        sent.update(topics)
        if (
            progress is not None
            and (total + len(due)) // _PROGRESS_EVERY > total // _PROGRESS_EVERY
        ):
            progress(total + len(due))
        total += len(due)
    await log.flush()
    if progress is not None:
        progress(total)
    return sent


async def _encoded(
    events: Sequence[Any], routed: Sequence[Route], routing: Mapping[type, Route]
) -> list[bytes]:
    """The wire bytes of `events`, in order: one `encode_many` per event type."""
    if len(routing) == 1:
        return await routed[0].codec.encode_many(events) if events else []
    by_route: dict[Route, list[Any]] = {}
    for event, route in zip(events, routed, strict=True):
        by_route.setdefault(route, []).append(event)
    encoded = {
        route: iter(await route.codec.encode_many(of_route)) for route, of_route in by_route.items()
    }
    return [next(encoded[route]) for route in routed]


_PROGRESS_EVERY = 1_000


def _event_time(event: Any) -> datetime:
    moment: datetime = event.timestamp
    return moment
