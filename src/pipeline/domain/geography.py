"""Where payments happen: the countries the payment domain knows, how far apart they are, and
their local time. Enough geography for the impossible-travel and night-time fraud rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

MAX_TRAVEL_SPEED_KMH = 1_000.0
"""Faster than an airliner's cruising speed: a card used in two places further apart than this
speed allows for the time between the two uses did not travel with its holder."""
EARTH_RADIUS_KM = 6_371.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Country:
    """A country as the payment rules see it: one point (its centre, roughly), its
    standard-time offset from UTC and its currency."""

    code: str
    """ISO 3166-1 alpha-2 code."""
    latitude: float
    longitude: float
    utc_offset_hours: float
    """Standard time (daylight saving ignored): good to the hour the night rule needs."""
    currency: str
    """ISO 4217 code of the currency used there."""


# fmt: off
_COUNTRIES = (
    Country(code="DE", latitude=51.2, longitude=10.4, utc_offset_hours=1, currency="EUR"),
    Country(code="FR", latitude=46.6, longitude=2.2, utc_offset_hours=1, currency="EUR"),
    Country(code="ES", latitude=40.4, longitude=-3.7, utc_offset_hours=1, currency="EUR"),
    Country(code="IT", latitude=42.8, longitude=12.8, utc_offset_hours=1, currency="EUR"),
    Country(code="NL", latitude=52.1, longitude=5.3, utc_offset_hours=1, currency="EUR"),
    Country(code="BE", latitude=50.6, longitude=4.6, utc_offset_hours=1, currency="EUR"),
    Country(code="AT", latitude=47.6, longitude=14.1, utc_offset_hours=1, currency="EUR"),
    Country(code="IE", latitude=53.4, longitude=-8.2, utc_offset_hours=0, currency="EUR"),
    Country(code="PT", latitude=39.6, longitude=-8.0, utc_offset_hours=0, currency="EUR"),
    Country(code="FI", latitude=64.0, longitude=26.0, utc_offset_hours=2, currency="EUR"),
    Country(code="GB", latitude=54.0, longitude=-2.0, utc_offset_hours=0, currency="GBP"),
    Country(code="SE", latitude=62.0, longitude=15.0, utc_offset_hours=1, currency="SEK"),
    Country(code="NO", latitude=61.0, longitude=8.5, utc_offset_hours=1, currency="NOK"),
    Country(code="DK", latitude=56.0, longitude=10.0, utc_offset_hours=1, currency="DKK"),
    Country(code="PL", latitude=52.0, longitude=19.0, utc_offset_hours=1, currency="PLN"),
    Country(code="CH", latitude=46.8, longitude=8.2, utc_offset_hours=1, currency="CHF"),
    Country(code="TR", latitude=39.0, longitude=35.2, utc_offset_hours=3, currency="TRY"),
    Country(code="US", latitude=39.8, longitude=-98.6, utc_offset_hours=-6, currency="USD"),
    Country(code="CA", latitude=56.1, longitude=-106.3, utc_offset_hours=-6, currency="CAD"),
    Country(code="MX", latitude=23.6, longitude=-102.5, utc_offset_hours=-6, currency="MXN"),
    Country(code="BR", latitude=-14.2, longitude=-51.9, utc_offset_hours=-3, currency="BRL"),
    Country(code="AR", latitude=-38.4, longitude=-63.6, utc_offset_hours=-3, currency="ARS"),
    Country(code="JP", latitude=36.2, longitude=138.3, utc_offset_hours=9, currency="JPY"),
    Country(code="KR", latitude=35.9, longitude=127.8, utc_offset_hours=9, currency="KRW"),
    Country(code="CN", latitude=35.9, longitude=104.2, utc_offset_hours=8, currency="CNY"),
    Country(code="SG", latitude=1.35, longitude=103.8, utc_offset_hours=8, currency="SGD"),
    Country(code="TH", latitude=15.9, longitude=101.0, utc_offset_hours=7, currency="THB"),
    Country(code="IN", latitude=20.6, longitude=79.0, utc_offset_hours=5.5, currency="INR"),
    Country(code="AE", latitude=23.4, longitude=53.8, utc_offset_hours=4, currency="AED"),
    Country(code="ZA", latitude=-30.6, longitude=22.9, utc_offset_hours=2, currency="ZAR"),
    Country(code="NG", latitude=9.1, longitude=8.7, utc_offset_hours=1, currency="NGN"),
    Country(code="EG", latitude=26.8, longitude=30.8, utc_offset_hours=2, currency="EGP"),
    Country(code="AU", latitude=-25.3, longitude=133.8, utc_offset_hours=10, currency="AUD"),
    Country(code="NZ", latitude=-40.9, longitude=174.9, utc_offset_hours=12, currency="NZD"),
)
# fmt: on

COUNTRIES = MappingProxyType({country.code: country for country in _COUNTRIES})
"""The countries the payment domain knows, by ISO 3166-1 alpha-2 code."""


def distance_km(a: Country, b: Country) -> float:
    """Great-circle distance between the points of two countries (haversine)."""
    lat_a, lat_b = math.radians(a.latitude), math.radians(b.latitude)
    half_dlat = (lat_b - lat_a) / 2.0
    half_dlon = math.radians(b.longitude - a.longitude) / 2.0
    h = math.sin(half_dlat) ** 2 + math.cos(lat_a) * math.cos(lat_b) * math.sin(half_dlon) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def travel_is_impossible(a: Country, b: Country, seconds: float) -> bool:
    """Whether going from `a` to `b` in `seconds` needs more than MAX_TRAVEL_SPEED_KMH."""
    distance = distance_km(a, b)
    if distance == 0.0:
        return False
    return seconds <= 0.0 or distance / (seconds / 3600.0) > MAX_TRAVEL_SPEED_KMH


def local_hour(country: Country, moment: datetime) -> float:
    """The hour of the day (0 ≤ h < 24, fractional) at `moment` (UTC) in `country`."""
    utc_hours = moment.hour + moment.minute / 60.0 + moment.second / 3600.0
    return (utc_hours + country.utc_offset_hours) % 24.0
