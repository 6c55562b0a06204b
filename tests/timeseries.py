"""Reading points back from the stack's time-series server (VictoriaMetrics, see
scripts/stack) through its query API, as the port's `Point`s."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx

from pipeline.application.ports.timeseries import FieldValue, Point
from tests.services import require_service

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMESERIES = "PIPELINE_STACK_TIMESERIES_URL"
"""The stack's time-series server, exported by `scripts/stack env`."""


def timeseries_url() -> str:
    """The stack's time-series server; skip (or fail, under CI) when it is not running."""
    return require_service(TIMESERIES)


async def stored_points(url: str, measurement: str, where: str = "") -> list[Point]:
    """Every point of `measurement` (whose tags match the label matchers `where`, e.g.
    `sensor_id=~"run-.*"`), in time order: the server's raw samples from /api/v1/export (one
    series per field, named `<measurement>_<field>`), gathered back into points by tags and
    time. A point stored twice would come back twice."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        # Samples still in memory are flushed first, so every write so far is readable.
        (await client.get("/internal/force_flush")).raise_for_status()
        answer = await client.post(
            "/api/v1/export",
            data={"match[]": f'{{__name__=~"{measurement}_.+"{"," if where else ""}{where}}}'},
        )
        answer.raise_for_status()
    prefix = f"{measurement}_"
    fields: dict[tuple[tuple[tuple[str, str], ...], int], list[dict[str, FieldValue]]]
    fields = defaultdict(list)
    for line in answer.text.splitlines():
        series = json.loads(line)
        labels = dict(series["metric"])
        field = labels.pop("__name__").removeprefix(prefix)
        labels.pop("db", None)  # the bucket, which VictoriaMetrics may add as a label
        tags = tuple(sorted(labels.items()))
        seen: dict[int, int] = defaultdict(int)
        for value, millis in zip(series["values"], series["timestamps"], strict=True):
            samples = fields[tags, millis]
            index = seen[millis]
            seen[millis] += 1
            if index == len(samples):
                samples.append({})
            samples[index][field] = value
    points = [
        Point(
            measurement=measurement,
            tags=dict(tags),
            fields=values,
            time=EPOCH + timedelta(milliseconds=millis),
        )
        for (tags, millis), samples in fields.items()
        for values in samples
    ]
    return sorted(points, key=lambda p: (p.time, p.identity()))
