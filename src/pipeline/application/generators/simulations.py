"""The shop, payment and social generators as a producer runs them (`production`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from pipeline.application.generators.base import Generated, Lane
from pipeline.application.generators.payments import (
    PAYMENTS_CYCLE,
    PaymentEvent,
    PaymentsConfig,
    generate_payments,
)
from pipeline.application.generators.production import Simulation
from pipeline.application.generators.shop import (
    EVENTS_PER_SESSION,
    SHOP_CYCLE,
    ShopConfig,
    generate_shop,
)
from pipeline.application.generators.social import (
    ENGAGEMENT_DELAY_MINUTES,
    ENGAGEMENTS_PER_POST,
    SOCIAL_CYCLE,
    SocialConfig,
    SocialEvent,
    generate_social,
)
from pipeline.domain.shop import ShopEvent

UNPACED_RATE = 200.0
"""Events per second of event time of a run as fast as possible (the generators' default)."""


def _shop(seed: int, start: datetime, rate: float, lane: Lane) -> Iterator[Generated[ShopEvent]]:
    config = ShopConfig(events_per_second=rate)
    return generate_shop(seed=seed, start=start, config=config, lane=lane)


def _payments(
    seed: int, start: datetime, rate: float, lane: Lane
) -> Iterator[Generated[PaymentEvent]]:
    config = PaymentsConfig(events_per_second=rate)
    return generate_payments(seed=seed, start=start, config=config, lane=lane)


def _social(
    seed: int, start: datetime, rate: float, lane: Lane
) -> Iterator[Generated[SocialEvent]]:
    config = SocialConfig(events_per_second=rate)
    return generate_social(seed=seed, start=start, config=config, lane=lane)


SIMULATIONS: Mapping[str, Simulation[Any]] = MappingProxyType(
    {
        "shop": Simulation(
            generate=_shop,
            cycle=SHOP_CYCLE,
            unpaced_rate=UNPACED_RATE,
            events_per_arrival=EVENTS_PER_SESSION,
            # A session's events follow its first by a few minutes.
            warm_up=timedelta(minutes=3),
        ),
        "payments": Simulation(
            generate=_payments,
            cycle=PAYMENTS_CYCLE,
            unpaced_rate=UNPACED_RATE,
            events_per_arrival=2.0,
            warm_up=timedelta(seconds=5),
        ),
        "social": Simulation(
            generate=_social,
            cycle=SOCIAL_CYCLE,
            unpaced_rate=UNPACED_RATE,
            events_per_arrival=1.0 + ENGAGEMENTS_PER_POST,
            # Likes arrive ENGAGEMENT_DELAY_MINUTES after their post on average.
            warm_up=timedelta(
                minutes=ENGAGEMENT_DELAY_MINUTES * ENGAGEMENTS_PER_POST / (1 + ENGAGEMENTS_PER_POST)
            ),
        ),
    }
)
"""The simulated domains `pipeline produce` knows, by name."""
