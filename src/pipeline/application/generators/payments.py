"""Seeded card payments: accounts with profiles, merchants, transactions over channels,
their authorisations and chargebacks, and labelled fraud.

Accounts are numbered `acct-000001`…; each draws its home country, currency, spending
segment (a typical amount), usual merchant categories and channel habits from its own seeded
random stream, so an account is the same whatever else the stream holds. Its profile is
emitted (for the compacted `accounts` topic) just before its first transaction. Normal
transactions follow a daily cycle; an account pays at its usual categories, card present
only in its home country, amounts log-normal around its typical amount and never above five
times it. Every transaction is followed 0.2–3 s later by its authorisation (approved or
declined), and a few approved ones by a chargeback later on.

Injected, labelled (`FraudPattern`; the label's `anomaly_id` names the episode, its
`subject` the account), each with the property that defines it:

    card_testing        6–15 online payments of at most 3 EUR (in the account's currency)
                        within 5 minutes, at digital-goods merchants
    velocity            8–15 payments within 5 minutes, each looking normal
    impossible_travel   a card-present payment in a country further from the account's
                        previous card-present payment than 1,000 km/h allows (the genuine
                        payment at home just before it is not labelled)
    amount_spike        one payment of 15–60 times the account's typical amount
    night_new_category  a payment between 00:00 and 05:00 local time (home country) at a
                        merchant category the account has never paid at before

Fraudulent payments are declined more often, and most approved ones are charged back
(`reason` fraud) 10 minutes to 2 hours of event time later: chargebacks take weeks in life,
the generator compresses them so that a run of an hour shows them.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import random
import struct
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import WHOLE_STREAM, AnomalyLabel, Generated, Lane
from pipeline.application.generators.cycles import (
    HOUR_US,
    MINUTE_US,
    SECOND_US,
    Arrivals,
    DailyCycle,
)
from pipeline.domain.geography import COUNTRIES, MAX_TRAVEL_SPEED_KMH, distance_km
from pipeline.domain.payments import (
    AccountProfile,
    Channel,
    OutcomeKind,
    PaymentOutcome,
    Transaction,
)
from pipeline.domain.time import from_epoch_micros, require_utc, to_epoch_micros

PaymentEvent = Transaction | AccountProfile | PaymentOutcome
"""What the payment generator yields: for the transactions, accounts and outcomes topics."""

PAYMENTS_CYCLE = DailyCycle(peak_hour=13.0, depth=0.5)
"""Payments peak at 13:00 UTC; at 01:00 UTC they are half the daily mean."""
EVENTS_PER_TRANSACTION = 2.0
"""A transaction and its authorisation (profiles and chargebacks come on top)."""
SECONDS_BETWEEN_PAYMENTS = 1_200.0
"""Mean event time between two payments of one account: the stream has as many accounts as
the transaction rate needs for it (`accounts_for`), so that normal accounts are not fast."""
TINY_AMOUNT_EUR = 3.0
"""Card testing pays at most this much (in EUR, converted to the account's currency)."""
SPIKE_FACTOR = (15.0, 60.0)
NORMAL_MAX_FACTOR = 5.0
"""Normal payments never exceed this many times the account's typical amount."""
NIGHT_HOURS = (0.0, 5.0)
"""Local hours (home country) the night rule looks at."""

USUAL_CATEGORIES = (
    "grocery", "restaurants", "fuel", "transport", "pharmacy", "clothing", "utilities",
    "entertainment", "travel", "home", "books", "telecom",
)  # fmt: skip
CARD_TESTING_CATEGORY = "digital_goods"
NIGHT_CATEGORIES = ("jewelry", "electronics", "gambling", "luxury_goods", "crypto_exchange")
"""Categories no account uses normally, so a payment at one is new to its account."""
# fmt: off
EUR_RATES = {
    "EUR": 1.0, "GBP": 0.86, "SEK": 11.4, "NOK": 11.6, "DKK": 7.46, "PLN": 4.3, "CHF": 0.95,
    "TRY": 35.0, "USD": 1.08, "CAD": 1.47, "MXN": 18.5, "BRL": 5.4, "ARS": 950.0,
    "JPY": 160.0, "KRW": 1450.0, "CNY": 7.8, "SGD": 1.45, "THB": 38.0, "INR": 90.0,
    "AED": 3.97, "ZAR": 20.0, "NGN": 1600.0, "EGP": 52.0, "AUD": 1.64, "NZD": 1.78,
}
"""Units of each currency per EUR (approximate, fixed)."""
HOME_SHARES = {
    "DE": 14, "FR": 12, "GB": 12, "ES": 8, "IT": 8, "NL": 5, "US": 10, "PL": 4, "SE": 3,
    "BE": 3, "AT": 2, "IE": 2, "PT": 2, "CH": 2, "DK": 1, "NO": 1, "FI": 1, "CA": 2,
    "AU": 2, "JP": 2, "BR": 1, "MX": 1, "IN": 1, "SG": 1,
}
"""Relative share of accounts by home country."""
SEGMENTS = (
    # name, share, typical amount in EUR
    ("student", 0.2, 15.0), ("everyday", 0.55, 40.0), ("affluent", 0.15, 120.0),
    ("business", 0.1, 300.0),
)
# fmt: on


class FraudPattern(StrEnum):
    """The fraud the payment generator injects (the label's `kind`)."""

    CARD_TESTING = "card_testing"
    VELOCITY = "velocity"
    IMPOSSIBLE_TRAVEL = "impossible_travel"
    AMOUNT_SPIKE = "amount_spike"
    NIGHT_NEW_CATEGORY = "night_new_category"


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentsConfig:
    """The shape of a generated payment stream."""

    events_per_second: float = 200.0
    """Mean events per second over a day: transactions and their authorisations."""
    accounts: int | None = None
    """How many accounts pay (None: `accounts_for` the rate)."""
    fraud_rate: float = 0.002
    """Probability that a normal transaction is accompanied by a fraud episode elsewhere."""
    patterns: tuple[FraudPattern, ...] = tuple(FraudPattern)
    chargeback_minutes: tuple[float, float] = (10.0, 120.0)

    def __post_init__(self) -> None:
        if self.events_per_second <= 0 or (self.accounts is not None and self.accounts < 1):
            raise ConfigurationError("payments need a positive rate and at least one account")
        if not 0.0 <= self.fraud_rate <= 1.0 or not self.patterns:
            raise ConfigurationError("fraud_rate is a probability; patterns must name one")
        low, high = self.chargeback_minutes
        if not 0 < low <= high:
            raise ConfigurationError("chargeback_minutes must be a positive range")


def accounts_for(events_per_second: float) -> int:
    """Accounts a stream of this rate has: one payment per account per 20 minutes on average
    (so that eight in five minutes, velocity fraud, practically never happens by chance)."""
    per_second = events_per_second / EVENTS_PER_TRANSACTION
    return max(1_000, math.ceil(per_second * SECONDS_BETWEEN_PAYMENTS))


class _Account:
    """An account's profile and what the stream remembers of it."""

    __slots__ = (
        "account_id", "country", "currency", "decimals", "home", "online_share", "per_eur",
        "seen", "segment", "sent", "typical", "typical_amount", "usual",
    )  # fmt: skip

    def __init__(
        self,
        *,
        account_id: str,
        home: str,
        segment: str,
        typical: float,
        usual: tuple[str, ...],
        online_share: float,
    ) -> None:
        self.account_id = account_id
        self.home = home
        self.country = COUNTRIES[home]
        self.currency = self.country.currency
        self.per_eur = EUR_RATES[self.currency]
        self.decimals = 0 if self.per_eur >= 100 else 2
        """Minor units of the generated amounts: none where a unit is worth little."""
        self.segment = segment
        self.typical_amount = _money(typical, self.decimals)
        self.typical = float(self.typical_amount)
        self.usual = usual
        self.online_share = online_share
        self.sent = False
        self.seen: set[str] = set(usual)
        """Categories the account has paid at or will pay at in a scheduled fraud."""

    def profile(self, at: datetime) -> AccountProfile:
        """The account's profile, stamped `at`."""
        return AccountProfile(
            account_id=self.account_id,
            home_country=self.home,
            currency=self.currency,
            segment=self.segment,
            typical_amount=self.typical_amount,
            usual_categories=self.usual,
            timestamp=at,
        )


class _Scheduled:
    """A future transaction of a fraud episode (or the genuine one before a travel fraud)."""

    __slots__ = ("account", "amount", "category", "channel", "country", "label", "merchant")

    def __init__(
        self,
        account: _Account,
        *,
        amount: Decimal,
        category: str,
        channel: Channel,
        country: str,
        merchant: str,
        label: AnomalyLabel | None,
    ) -> None:
        self.account = account
        self.amount = amount
        self.category = category
        self.channel = channel
        self.country = country
        self.merchant = merchant
        self.label = label


_COUNTRY_CODES = tuple(HOME_SHARES)
_COUNTRY_CUTS = tuple(itertools.accumulate(HOME_SHARES.values()))


def account_profile(seed: int, index: int, at: datetime) -> AccountProfile:
    """The profile of account number `index` (0-based) of stream `seed`, stamped `at`."""
    return _account(seed, index).profile(at)


def _account(seed: int, index: int) -> _Account:
    # Drawn from a hash of (seed, index), not a seeded Random: seeding one costs 14 µs, and a
    # stream meets a new account every few transactions.
    digest = hashlib.blake2b(
        f"pipeline.payments/{seed}/account/{index}".encode(), digest_size=32
    ).digest()
    u = [v / 65_536.0 for v in struct.unpack(">10H", digest[12:32])]
    home = _COUNTRY_CODES[bisect(_COUNTRY_CUTS, u[0] * _COUNTRY_CUTS[-1])]
    roll = u[1]
    segment, typical_eur = SEGMENTS[-1][0], SEGMENTS[-1][2]
    for name, share, amount in SEGMENTS:
        if roll < share:
            segment, typical_eur = name, amount
            break
        roll -= share
    # exp of a sum of three uniforms: log-normal-ish spread of ±50 % around the segment's.
    typical = typical_eur * EUR_RATES[COUNTRIES[home].currency]
    typical *= math.exp(0.6 * (u[2] + u[3] + u[4] - 1.5))
    ranking = sorted(range(len(USUAL_CATEGORIES)), key=digest.__getitem__)
    usual = tuple(sorted(USUAL_CATEGORIES[i] for i in ranking[: 3 + int(u[5] * 4)]))
    return _Account(
        account_id=f"acct-{index + 1:06d}",
        home=home,
        segment=segment,
        typical=typical,
        usual=usual,
        online_share=0.15 + 0.35 * u[6],
    )


def _money(amount: float, decimals: int) -> Decimal:
    scale = 10**decimals
    return Decimal(max(1, round(amount * scale))).scaleb(-decimals)


def generate_payments(
    *,
    seed: int,
    start: datetime,
    config: PaymentsConfig = PaymentsConfig(),
    lane: Lane = WHOLE_STREAM,
) -> Iterator[Generated[PaymentEvent]]:
    """The infinite payment stream of `seed` from event time `start` (tz-aware UTC), in
    non-decreasing event time: account profiles, transactions and payment outcomes, all
    keyed on the wire by account id. With a `lane`, only the accounts of that lane (`Lane`;
    how many accounts there are is the stream's)."""
    require_utc(start, "generator start")
    return _Stream(seed, to_epoch_micros(start), config, lane).events()


_TRANSACTION, _OUTCOME = 0, 1


class _Stream:
    """The state of one payment stream: accounts seen, pending events, episode counters."""

    def __init__(self, seed: int, start_us: int, config: PaymentsConfig, lane: Lane) -> None:
        self.seed = seed
        self.config = config
        self.lane = lane
        self.rng = lane.rng(f"pipeline.payments/{seed}")
        self.accounts_total = config.accounts or accounts_for(config.events_per_second)
        self.accounts: dict[int, _Account] = {}
        self.pending: list[tuple[int, int, int, object]] = []
        self.order = itertools.count()
        self.transactions = itertools.count()
        self.episodes = 0
        self.arrivals = Arrivals(
            self.rng,
            rate=config.events_per_second / EVENTS_PER_TRANSACTION / lane.of,
            cycle=PAYMENTS_CYCLE,
            start_us=start_us,
        )
        self.last_card_present: dict[str, tuple[int, str]] = {}

    def account_drawn(self) -> _Account:
        """An account of the lane, each as likely."""
        total = self.accounts_total
        return self.account(self.lane.own(int(total * self.rng.random()), total))

    def account(self, index: int) -> _Account:
        found = self.accounts.get(index)
        if found is None:
            found = self.accounts[index] = _account(self.seed, index)
        return found

    def events(self) -> Iterator[Generated[PaymentEvent]]:
        rng = self.rng
        rand = rng.random
        pending = self.pending
        pop = heapq.heappop
        fraud_rate = self.config.fraud_rate
        arrival = self.arrivals.next()
        while True:
            if pending and pending[0][0] <= arrival:
                now, _, kind, item = pop(pending)
                if kind == _OUTCOME:
                    assert isinstance(item, PaymentOutcome)
                    yield Generated(event=item)
                    continue
                assert isinstance(item, _Scheduled)
                scheduled = item
            else:
                now = arrival
                arrival = self.arrivals.next()
                if rand() < fraud_rate:
                    self.start_episode(now)
                scheduled = self.normal(now)
            account = scheduled.account
            if not account.sent:
                account.sent = True
                yield Generated(event=account.profile(from_epoch_micros(now)))
            yield self.transaction(now, scheduled)

    def normal(self, now: int) -> _Scheduled:
        rng = self.rng
        account = self.account_drawn()
        usual = account.usual
        category = usual[int(rng.random() * len(usual))]
        amount = account.typical * min(NORMAL_MAX_FACTOR, rng.lognormvariate(0.0, 0.6))
        roll = rng.random()
        home = account.home
        if roll < account.online_share:
            channel = Channel.ONLINE
            country = (
                home
                if rng.random() < 0.8
                else _COUNTRY_CODES[int(rng.random() * len(_COUNTRY_CODES))]
            )
        elif roll < account.online_share + 0.05:
            channel = Channel.TRANSFER
            country = home
        elif roll < account.online_share + 0.1:
            channel = Channel.MOBILE
            country = home
        else:
            channel = Channel.ATM if rng.random() < 0.08 else Channel.POINT_OF_SALE
            country = home
        return _Scheduled(
            account,
            amount=_money(amount, account.decimals),
            category=category,
            channel=channel,
            country=country,
            merchant=_merchant(country, category, rng),
            label=None,
        )

    def transaction(self, now: int, s: _Scheduled) -> Generated[PaymentEvent]:
        account = s.account
        timestamp = from_epoch_micros(now)
        tx = Transaction(
            transaction_id=f"tx{self.seed}-{self.lane.number(next(self.transactions))}",
            account_id=account.account_id,
            amount=s.amount,
            currency=account.currency,
            merchant=s.merchant,
            country=s.country,
            channel=s.channel,
            timestamp=timestamp,
            merchant_category=s.category,
        )
        rand = self.rng.random
        fraud = s.label is not None
        declined = rand() < (0.3 if fraud else 0.02)
        self.schedule_outcome(
            now + int(self.rng.uniform(0.2, 3.0) * SECOND_US),
            tx,
            OutcomeKind.DECLINED if declined else OutcomeKind.AUTHORISED,
            ("suspected_fraud" if fraud else "insufficient_funds") if declined else None,
        )
        if not declined and rand() < (0.7 if fraud else 0.0005):
            low, high = self.config.chargeback_minutes
            self.schedule_outcome(
                now + int(self.rng.uniform(low, high) * MINUTE_US),
                tx,
                OutcomeKind.CHARGEBACK,
                "fraud" if fraud else "dispute",
            )
        return Generated(event=tx, label=s.label)

    def schedule_outcome(
        self, at: int, tx: Transaction, kind: OutcomeKind, reason: str | None
    ) -> None:
        outcome = PaymentOutcome(
            transaction_id=tx.transaction_id,
            account_id=tx.account_id,
            kind=kind,
            amount=tx.amount,
            currency=tx.currency,
            timestamp=from_epoch_micros(at),
            reason=reason,
        )
        heapq.heappush(self.pending, (at, next(self.order), _OUTCOME, outcome))

    def schedule(self, at: int, transaction: _Scheduled) -> None:
        heapq.heappush(self.pending, (at, next(self.order), _TRANSACTION, transaction))

    def start_episode(self, now: int) -> None:
        """Schedule the transactions of a new fraud episode on a random account."""
        rng = self.rng
        patterns = self.config.patterns
        pattern = patterns[int(rng.random() * len(patterns))]
        account = self.account_drawn()
        episode = self.lane.number(self.episodes)
        self.episodes += 1
        label = AnomalyLabel(
            kind=pattern,
            anomaly_id=f"fraud-{episode:06d}",
            subject=account.account_id,
        )
        at = now + int(rng.uniform(1.0, 60.0) * SECOND_US)
        {
            FraudPattern.CARD_TESTING: self.card_testing,
            FraudPattern.VELOCITY: self.velocity,
            FraudPattern.IMPOSSIBLE_TRAVEL: self.impossible_travel,
            FraudPattern.AMOUNT_SPIKE: self.amount_spike,
            FraudPattern.NIGHT_NEW_CATEGORY: self.night_new_category,
        }[pattern](account, at, label)

    def card_testing(self, account: _Account, at: int, label: AnomalyLabel) -> None:
        rng = self.rng
        account.seen.add(CARD_TESTING_CATEGORY)
        for _ in range(rng.randint(6, 15)):
            country = _any_country(rng)
            tiny = rng.uniform(0.5, TINY_AMOUNT_EUR)
            self.schedule(
                at,
                _Scheduled(
                    account,
                    amount=_money(tiny * account.per_eur, account.decimals),
                    category=CARD_TESTING_CATEGORY,
                    channel=Channel.ONLINE,
                    country=country,
                    merchant=_merchant(country, CARD_TESTING_CATEGORY, rng),
                    label=label,
                ),
            )
            at += int(rng.uniform(2.0, 20.0) * SECOND_US)

    def velocity(self, account: _Account, at: int, label: AnomalyLabel) -> None:
        rng = self.rng
        home = account.home
        usual = account.usual
        for _ in range(rng.randint(8, 15)):
            category = usual[int(rng.random() * len(usual))]
            factor = min(NORMAL_MAX_FACTOR, rng.lognormvariate(0.0, 0.6))
            channel = Channel.ONLINE if rng.random() < 0.5 else Channel.POINT_OF_SALE
            self.schedule(
                at,
                _Scheduled(
                    account,
                    amount=_money(account.typical * factor, account.decimals),
                    category=category,
                    channel=channel,
                    country=home,
                    merchant=_merchant(home, category, rng),
                    label=label,
                ),
            )
            at += int(rng.uniform(5.0, 20.0) * SECOND_US)

    def impossible_travel(self, account: _Account, at: int, label: AnomalyLabel) -> None:
        rng = self.rng
        home = account.country
        far = [c for c in COUNTRIES.values() if distance_km(home, c) >= 3_000.0]
        abroad = far[int(rng.random() * len(far))]
        usual = account.usual
        category = usual[int(rng.random() * len(usual))]
        # The genuine payment at home, then the cloned card abroad at 1.5 to 10 times the
        # speed an airliner would need.
        self.schedule(
            at,
            _Scheduled(
                account,
                amount=_money(account.typical * rng.uniform(0.5, 1.5), account.decimals),
                category=category,
                channel=Channel.POINT_OF_SALE,
                country=home.code,
                merchant=_merchant(home.code, category, rng),
                label=None,
            ),
        )
        hours = distance_km(home, abroad) / (MAX_TRAVEL_SPEED_KMH * rng.uniform(1.5, 10.0))
        self.schedule(
            at + int(hours * HOUR_US),
            _Scheduled(
                account,
                amount=_money(account.typical * rng.uniform(1.0, 4.0), account.decimals),
                category=category,
                channel=Channel.ATM if rng.random() < 0.4 else Channel.POINT_OF_SALE,
                country=abroad.code,
                merchant=_merchant(abroad.code, category, rng),
                label=label,
            ),
        )

    def amount_spike(self, account: _Account, at: int, label: AnomalyLabel) -> None:
        rng = self.rng
        usual = account.usual
        category = usual[int(rng.random() * len(usual))]
        home = account.home
        self.schedule(
            at,
            _Scheduled(
                account,
                amount=_money(account.typical * rng.uniform(*SPIKE_FACTOR), account.decimals),
                category=category,
                channel=Channel.ONLINE,
                country=home,
                merchant=_merchant(home, category, rng),
                label=label,
            ),
        )

    def night_new_category(self, account: _Account, at: int, label: AnomalyLabel) -> None:
        rng = self.rng
        fresh = [c for c in NIGHT_CATEGORIES if c not in account.seen]
        if not fresh:
            return
        category = fresh[int(rng.random() * len(fresh))]
        account.seen.add(category)
        # The next local night of the account's home country.
        offset = int(account.country.utc_offset_hours * HOUR_US)
        day = 24 * HOUR_US
        local = at + offset
        night_start = local - local % day
        start, end = (int(h * HOUR_US) for h in NIGHT_HOURS)
        if local - night_start >= end:
            night_start += day
        moment = max(local, night_start + start + int(rng.random() * (end - start)))
        moment = min(moment, night_start + end - 1)
        home = account.home
        self.schedule(
            moment - offset,
            _Scheduled(
                account,
                amount=_money(account.typical * rng.uniform(1.0, 4.0), account.decimals),
                category=category,
                channel=Channel.ONLINE if rng.random() < 0.6 else Channel.POINT_OF_SALE,
                country=home,
                merchant=_merchant(home, category, rng),
                label=label,
            ),
        )


def _any_country(rng: random.Random) -> str:
    return _COUNTRY_CODES[int(rng.random() * len(_COUNTRY_CODES))]


def _merchant(country: str, category: str, rng: random.Random) -> str:
    return f"{category}-{country.lower()}-{int(rng.random() * 40) + 1:03d}"
