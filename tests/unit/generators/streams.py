"""A generator's stream as a producer run makes it: its lanes generated apart, then merged."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

from pipeline.application.generators.base import Generated, Lane
from pipeline.application.generators.production import merged

E = TypeVar("E")


def in_lanes(
    generate: Callable[..., Iterator[Generated[E]]],
    *,
    seed: int,
    start: datetime,
    config: object,
    lanes: int,
) -> Iterator[Generated[E]]:
    """The stream of `seed` from `start`: with `lanes` = 1 the whole stream, otherwise that
    many lanes generated apart and merged in event-time order."""
    return merged(
        [
            generate(seed=seed, start=start, config=config, lane=Lane(index, lanes))
            for index in range(lanes)
        ]
    )
