"""Seeded, reproducible generators of synthetic events, by domain.

Each generator is a pure function of a seed and a start time (see `base`), yielding
`Generated` events with ground-truth anomaly labels. Look one up by name with
`generator_named`; the registry grows as the shop, payment and social generators arrive.
`production` lays a producer run out in event time and releases it no faster than the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import AnomalyLabel, EventGenerator, Generated
from pipeline.application.generators.sensors import (
    SensorAnomalyKind,
    SensorFleetConfig,
    generate_readings,
)

GENERATORS: Mapping[str, EventGenerator[Any]] = MappingProxyType(
    {
        "sensors": generate_readings,
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
    "Generated",
    "SensorAnomalyKind",
    "SensorFleetConfig",
    "generate_readings",
    "generator_named",
]
