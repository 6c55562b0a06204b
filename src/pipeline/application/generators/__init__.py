"""Seeded, reproducible generators of synthetic events, by domain.

Each generator is a pure function of a seed and a start time (see `base`), yielding
`Generated` events with ground-truth anomaly labels (`label_headers` carries them on the
wire). Look one up by name with `generator_named`. `production` lays a producer run out in
event time and releases it no faster than the clock; `simulations` describes the shop,
payment and social generators to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import (
    AnomalyLabel,
    EventGenerator,
    Generated,
    label_from_headers,
    label_headers,
)
from pipeline.application.generators.payments import (
    FraudPattern,
    PaymentEvent,
    PaymentsConfig,
    generate_payments,
)
from pipeline.application.generators.sensors import (
    SensorAnomalyKind,
    SensorFleetConfig,
    generate_readings,
)
from pipeline.application.generators.shop import ShopAnomalyKind, ShopConfig, generate_shop
from pipeline.application.generators.social import (
    SocialAnomalyKind,
    SocialConfig,
    SocialEvent,
    generate_social,
)

GENERATORS: Mapping[str, EventGenerator[Any]] = MappingProxyType(
    {
        "sensors": generate_readings,
        "shop": generate_shop,
        "payments": generate_payments,
        "social": generate_social,
    }
)
"""Every generator, by the name the CLI and the benchmark use."""


def generator_named(name: str) -> EventGenerator[Any]:
    """The generator registered as `name`, or ConfigurationError listing the known ones."""
    try:
        return GENERATORS[name]
    except KeyError:
        known = ", ".join(sorted(GENERATORS))
        raise ConfigurationError(f"unknown generator {name!r}; known: {known}") from None


__all__ = [
    "GENERATORS",
    "AnomalyLabel",
    "EventGenerator",
    "FraudPattern",
    "Generated",
    "PaymentEvent",
    "PaymentsConfig",
    "SensorAnomalyKind",
    "SensorFleetConfig",
    "ShopAnomalyKind",
    "ShopConfig",
    "SocialAnomalyKind",
    "SocialConfig",
    "SocialEvent",
    "generate_payments",
    "generate_readings",
    "generate_shop",
    "generate_social",
    "generator_named",
    "label_from_headers",
    "label_headers",
]
