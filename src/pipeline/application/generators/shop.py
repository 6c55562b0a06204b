"""A seeded web shop: shoppers in sessions walking a funnel, a catalogue, orders.

Sessions arrive following a daily cycle (evenings busy, nights quiet). A session belongs to a
user (returning users come back more often than others) shopping in their currency, and walks
the funnel as a Markov chain, one event per step with a realistic dwell time before the next:

    search ─┐                       ┌──► purchase (an order of the cart's lines)
            ├─► page_view ─► add_to_cart ─┤
    (entry) ┘       ▲   │               └──► leave (an abandoned cart)
                    └───┘ (browse on, search again, or leave at any step)

A search names a category's product and leads to that category's products; most sessions
leave after a few views, about one in ten puts something in the cart and about a third of
those buy. Dwell times are log-normal and shorter than 20 minutes, so a session is one
session window at a 30-minute gap. Prices come from the catalogue in the user's currency.

Injected, labelled: **checkout outages** (`checkout_outage`): for 10 to 30 minutes every
purchase attempt fails and the session leaves with its cart. Every event in the outage carries
its label (one `anomaly_id` per outage), and no purchase happens inside one: the conversion
rate drops to zero, which a conversion alert should catch.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import random
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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
from pipeline.domain.shop import Order, OrderLine, ShopEvent, ShopEventType
from pipeline.domain.time import from_epoch_micros, require_utc, to_epoch_micros

SHOP_CYCLE = DailyCycle(peak_hour=20.0, depth=0.6)
"""Shop traffic peaks at 20:00 UTC; at 08:00 UTC it is 40 % of the daily mean."""
EVENTS_PER_SESSION = 3.4
"""Mean events of a session at the default funnel (measured): converts an event rate into a
session rate."""
MAX_STEPS = 60
"""A session leaves after this many events at the latest."""
MAX_DWELL_S = 1_200.0
"""Longest time between two events of a session: shorter than a 30-minute session gap."""

# fmt: off
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], float]] = {
    # category: (nouns, adjectives, median price in EUR)
    "electronics": (("headphones", "charger", "speaker", "keyboard", "monitor", "webcam"),
                    ("wireless", "portable", "compact", "pro", "smart"), 60.0),
    "books": (("novel", "cookbook", "atlas", "biography", "thriller"),
              ("illustrated", "paperback", "classic", "bestselling"), 15.0),
    "fashion": (("jacket", "sneakers", "scarf", "dress", "jeans", "hoodie"),
                ("linen", "waterproof", "slim", "vintage", "wool"), 45.0),
    "home": (("lamp", "rug", "kettle", "pillow", "vase", "shelf"),
             ("ceramic", "oak", "minimalist", "cosy", "nordic"), 35.0),
    "sports": (("yoga mat", "dumbbells", "tent", "bike helmet", "running shoes"),
               ("lightweight", "adjustable", "trail", "foldable"), 40.0),
    "beauty": (("serum", "shampoo", "perfume", "lipstick", "face cream"),
               ("organic", "vegan", "hydrating", "travel size"), 20.0),
    "toys": (("puzzle", "lego set", "board game", "plush bear", "kite"),
             ("wooden", "educational", "giant", "classic"), 25.0),
    "grocery": (("coffee beans", "olive oil", "green tea", "chocolate", "pasta"),
                ("organic", "fair trade", "italian", "dark"), 8.0),
}
CURRENCIES: tuple[tuple[str, float, float], ...] = (
    # (ISO 4217, share of users, units per EUR)
    ("EUR", 0.45, 1.0), ("USD", 0.30, 1.08), ("GBP", 0.15, 0.86),
    ("SEK", 0.05, 11.4), ("PLN", 0.05, 4.3),
)
# fmt: on


class ShopAnomalyKind(StrEnum):
    """What the shop generator injects."""

    CHECKOUT_OUTAGE = "checkout_outage"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShopConfig:
    """The shape of a generated shop."""

    events_per_second: float = 200.0
    """Mean events per second of event time over a day (the daily cycle varies it)."""
    products: int = 2_000
    users: int = 100_000
    outages_per_day: float = 2.0
    """Mean checkout outages per day of event time (0: none)."""
    outage_minutes: tuple[float, float] = (10.0, 30.0)

    def __post_init__(self) -> None:
        if self.events_per_second <= 0 or self.products < 1 or self.users < 1:
            raise ConfigurationError("a shop needs a positive rate, products and users")
        low, high = self.outage_minutes
        if self.outages_per_day < 0 or not 0 < low <= high < 24 * 60:
            raise ConfigurationError("outages need a non-negative rate and a duration range")


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
    """One product of the catalogue; `prices` in the order of CURRENCIES."""

    product_id: str
    category: str
    prices: tuple[Decimal, ...]


@functools.lru_cache(maxsize=8)
def catalogue(seed: int, products: int) -> tuple[Product, ...]:
    """The product catalogue of shop `seed`: ids `prod-00001`…, prices log-normally spread
    around their category's median (ending in .99 below 100, whole above)."""
    rng = random.Random(f"pipeline.shop/{seed}/catalogue")
    names = sorted(CATEGORIES)
    items = []
    for index in range(products):
        category = names[rng.randrange(len(names))]
        median = CATEGORIES[category][2]
        eur = median * math.exp(rng.gauss(0.0, 0.6))
        prices = tuple(_price(eur * per_eur) for _, _, per_eur in CURRENCIES)
        items.append(Product(product_id=f"prod-{index + 1:05d}", category=category, prices=prices))
    return tuple(items)


def _price(amount: float) -> Decimal:
    whole = max(1, round(amount))
    cents = whole * 100 - 1 if whole < 100 else whole * 100
    return Decimal(cents).scaleb(-2)


class _Session:
    __slots__ = (
        "cart",
        "category",
        "currency",
        "id",
        "label",
        "steps",
        "user",
        "wants",
    )  # fmt: skip

    def __init__(self, session_id: str, user: str, currency: int, wants: float) -> None:
        self.id = session_id
        self.user = user
        self.currency = currency
        self.wants = wants
        self.cart: list[OrderLine] = []
        self.category: str | None = None
        self.steps = 0
        self.label: AnomalyLabel | None = None


def generate_shop(
    *, seed: int, start: datetime, config: ShopConfig = ShopConfig(), lane: Lane = WHOLE_STREAM
) -> Iterator[Generated[ShopEvent]]:
    """The infinite event stream of shop `seed` from event time `start` (tz-aware UTC), in
    non-decreasing event time. Keyed on the wire by session id. With a `lane`, only the
    sessions of that lane (`Lane`; users keep no state, so every lane draws them from all;
    the catalogue and the outages are the shop's)."""
    require_utc(start, "generator start")
    return _Shop(seed, to_epoch_micros(start), config, lane).events()


_Step = tuple[ShopEvent, ShopEventType | None, float]
"""An event, what the session does next (None: it leaves) and the dwell (s) before it."""


class _Shop:
    """The state of one shop stream: catalogue, sessions under way, outages."""

    def __init__(self, seed: int, start_us: int, config: ShopConfig, lane: Lane) -> None:
        self.config = config
        self.lane = lane
        rng = self.rng = lane.rng(f"pipeline.shop/{seed}")
        self.rand = rng.random
        products = catalogue(seed, config.products)
        self.by_category: dict[str, list[Product]] = {}
        for product in products:
            self.by_category.setdefault(product.category, []).append(product)
        self.categories = sorted(self.by_category)
        # Popularity follows a power law over a seeded ranking of the catalogue.
        self.popularity = list(
            itertools.accumulate(1.0 / (rank + 1) ** 0.9 for rank in range(len(products)))
        )
        self.ranked = list(products)
        lane.shared(rng, f"pipeline.shop/{seed}/ranking").shuffle(self.ranked)
        self.currency_cuts = list(itertools.accumulate(share for _, share, _ in CURRENCIES))
        self.arrivals = Arrivals(
            rng,
            rate=config.events_per_second / EVENTS_PER_SESSION / lane.of,
            cycle=SHOP_CYCLE,
            start_us=start_us,
        )
        self.sessions = itertools.count()
        self.prefix = f"s{seed}-"
        # Outages are the shop's, not a lane's: drawn from the seed alone.
        self.outage_rng = lane.shared(rng, f"pipeline.shop/{seed}/outages")
        self.outage_rate = config.outages_per_day / DAY_US
        self.next_outage = self.outage_after(start_us)
        self.outage_end = start_us
        self.outage_label: AnomalyLabel | None = None
        self.outages = 0

    def events(self) -> Iterator[Generated[ShopEvent]]:
        pending: list[tuple[int, int, _Session, ShopEventType]] = []
        order = itertools.count()
        push, pop = heapq.heappush, heapq.heappop
        arrival = self.arrivals.next()
        steps = {
            ShopEventType.SEARCH: self.search,
            ShopEventType.PAGE_VIEW: self.view,
            ShopEventType.ADD_TO_CART: self.add_to_cart,
            ShopEventType.PURCHASE: self.purchase,
        }
        while True:
            if pending and pending[0][0] <= arrival:
                now, _, session, kind = pop(pending)
            else:
                now = arrival
                arrival = self.arrivals.next()
                session, kind = self.new_session()
            if now >= self.next_outage:
                self.start_outage(now)
            label = self.outage_label if now < self.outage_end else None
            if kind is ShopEventType.PURCHASE and label is not None:
                continue  # the checkout fails: the shopper leaves with a full cart
            session.steps += 1
            event, after, dwell = steps[kind](session, now)
            yield Generated(event=event, label=label)
            if after is not None and session.steps < MAX_STEPS:
                # Dwell capped: a session stays within a 30-minute session gap.
                gap = SECOND_US + int(min(dwell, MAX_DWELL_S) * SECOND_US)
                push(pending, (now + gap, next(order), session, after))

    def new_session(self) -> tuple[_Session, ShopEventType]:
        rand = self.rand
        # Returning users: low user numbers come back far more often.
        user = int(self.config.users * rand() ** 2)
        # A user's currency is fixed by their number.
        currency = bisect(self.currency_cuts, (user * 2_654_435_761 % 1_000) / 1_000)
        session = _Session(
            f"{self.prefix}{self.lane.number(next(self.sessions))}",
            f"u-{user + 1:06d}",
            min(currency, len(CURRENCIES) - 1),
            0.15 if rand() < 0.2 else 0.03,
        )
        return session, ShopEventType.SEARCH if rand() < 0.35 else ShopEventType.PAGE_VIEW

    def start_outage(self, now: int) -> None:
        while now >= self.next_outage:
            self.outages += 1
            self.outage_label = AnomalyLabel(
                kind=ShopAnomalyKind.CHECKOUT_OUTAGE, anomaly_id=f"outage-{self.outages:06d}"
            )
            low, high = self.config.outage_minutes
            minutes = self.outage_rng.uniform(low, high)
            self.outage_end = self.next_outage + int(minutes * MINUTE_US)
            self.next_outage = self.outage_after(self.outage_end)

    def outage_after(self, moment: int) -> int:
        if self.outage_rate <= 0:
            return 2**62
        return moment + int(self.outage_rng.expovariate(self.outage_rate))

    def search(self, session: _Session, now: int) -> _Step:
        rand = self.rand
        category = self.categories[int(rand() * len(self.categories))]
        session.category = category
        nouns, adjectives, _ = CATEGORIES[category]
        query = nouns[int(rand() * len(nouns))]
        if rand() < 0.4:
            query = f"{adjectives[int(rand() * len(adjectives))]} {query}"
        event = ShopEvent(
            event_id=f"{session.id}-{session.steps}",
            event_type=ShopEventType.SEARCH,
            session_id=session.id,
            user_id=session.user,
            timestamp=from_epoch_micros(now),
            query=query,
        )
        roll = rand()
        after = (
            ShopEventType.PAGE_VIEW if roll < 0.85 else ShopEventType.SEARCH if roll < 0.9 else None
        )
        return event, after, self.rng.lognormvariate(2.5, 0.7)

    def view(self, session: _Session, now: int) -> _Step:
        rand = self.rand
        product = self.pick(session)
        price = product.prices[session.currency]
        event = ShopEvent(
            event_id=f"{session.id}-{session.steps}",
            event_type=ShopEventType.PAGE_VIEW,
            session_id=session.id,
            user_id=session.user,
            timestamp=from_epoch_micros(now),
            product_id=product.product_id,
            price=price,
        )
        roll = rand()
        after: ShopEventType | None = None
        if roll < session.wants:
            after = ShopEventType.ADD_TO_CART
            session.category = product.category
            quantity = 1 if rand() < 0.8 else 2 + int(rand() * 3)
            line = OrderLine(product_id=product.product_id, quantity=quantity, unit_price=price)
            session.cart.append(line)
        elif roll < 0.62:
            after = ShopEventType.PAGE_VIEW
        elif roll < 0.70:
            after = ShopEventType.SEARCH
        return event, after, self.rng.lognormvariate(3.3, 0.9)

    def add_to_cart(self, session: _Session, now: int) -> _Step:
        line = session.cart[-1]
        event = ShopEvent(
            event_id=f"{session.id}-{session.steps}",
            event_type=ShopEventType.ADD_TO_CART,
            session_id=session.id,
            user_id=session.user,
            timestamp=from_epoch_micros(now),
            product_id=line.product_id,
            quantity=line.quantity,
            price=line.unit_price,
        )
        roll = self.rand()
        after = (
            ShopEventType.PURCHASE
            if roll < 0.3
            else ShopEventType.PAGE_VIEW
            if roll < 0.55
            else None
        )
        return event, after, self.rng.lognormvariate(3.8, 0.8)

    def purchase(self, session: _Session, now: int) -> _Step:
        lines = tuple(session.cart)
        session.cart = []
        event_id = f"{session.id}-{session.steps}"
        timestamp = from_epoch_micros(now)
        order = Order(
            order_id=f"o-{event_id}",
            session_id=session.id,
            user_id=session.user,
            lines=lines,
            currency=CURRENCIES[session.currency][0],
            timestamp=timestamp,
        )
        event = ShopEvent(
            event_id=event_id,
            event_type=ShopEventType.PURCHASE,
            session_id=session.id,
            user_id=session.user,
            timestamp=timestamp,
            order=order,
        )
        return event, ShopEventType.PAGE_VIEW if self.rand() < 0.1 else None, 0.0

    def pick(self, session: _Session) -> Product:
        roll = self.rand()
        if session.category is not None and roll < 0.7:
            # After a search (or a cart addition), browse that category.
            choices = self.by_category[session.category]
            return choices[int(roll / 0.7 * len(choices))]
        index = bisect(self.popularity, roll * self.popularity[-1])
        return self.ranked[min(index, len(self.ranked) - 1)]
