"""A small job for the runtime's tests: JSON `Tick`s (key, event time, value) → the ticks
themselves (sink `ticks`) and per-key one-minute counts (sink `counts`, window updates)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.adapters.memory.checkpoint import Undo
from pipeline.application.errors import MalformedPayload
from pipeline.application.ports import Record
from pipeline.application.ports.checkpoint import SinkResult
from pipeline.streams import Count, Job, Sink, Tumbling, Windowed


@dataclass(frozen=True, slots=True)
class Tick:
    key: str
    at: datetime
    value: int


class TickRefused(ValueError):
    rule = "negative_tick"


class TickCodec:
    """JSON ticks on the wire."""

    async def encode(self, tick: Tick) -> bytes:
        data = {"key": tick.key, "at": tick.at.isoformat(), "value": tick.value}
        return json.dumps(data).encode()

    async def decode_many(self, payloads: Sequence[bytes | None]) -> list[Any]:
        out: list[Any] = []
        for payload in payloads:
            try:
                data = json.loads(payload or b"")
                out.append(Tick(data["key"], datetime.fromisoformat(data["at"]), data["value"]))
            except (ValueError, KeyError, TypeError) as error:
                out.append(MalformedPayload(f"not a tick: {error}"))
        return out


def tick_job(
    topic: str,
    *,
    grace: timedelta = timedelta(seconds=10),
    dead_letter: bool = True,
    every: timedelta | None = None,
) -> Job:
    """`dead_letter=False`: a negative tick is refused without a dead letter; `every`: the
    counts' updates are emitted at most once per `every`."""
    job = Job("ticks", idle_timeout=timedelta(seconds=30))

    def check(tick: Tick) -> None:
        if tick.value < 0:
            raise TickRefused(f"tick {tick.value} is negative")

    ticks = job.source(topic, Tick, key=lambda t: t.key, event_time=lambda t: t.at)
    valid = ticks.validate(check, rejects=(TickRefused,), dead_letter=dead_letter)
    valid.to(Sink("ticks", Tick))
    (
        valid.window(Tumbling(size=timedelta(minutes=1), grace=grace), step="counts")
        .aggregate(Count())
        .updates(every=every)
        .to(Sink("counts", Windowed))
    )
    return job


class ListSink:
    """A memory sink keeping rows (idempotent by `identity`); refuses rows `refuse` names."""

    def __init__(self, identity: Any, refuse: Any = None) -> None:
        self.rows: dict[Any, Any] = {}
        self._identity = identity
        self._refuse = refuse

    def write(
        self, rows: Sequence[Any], origins: Sequence[Record | None], undo: Undo
    ) -> SinkResult:
        written = 0
        for row in rows:
            if self._refuse is not None and self._refuse(row):
                raise ValueError(f"refused {row!r}")
            key = self._identity(row)
            before = self.rows.get(key)
            if before != row:
                self.rows[key] = row
                written += 1
                undo.append(functools.partial(self._put_back, key, before))
        return SinkResult(written=written)

    def _put_back(self, key: Any, before: Any) -> None:
        if before is None:
            self.rows.pop(key, None)
        else:
            self.rows[key] = before
