"""Ranking the keys of a window: `Stream.top_k` (the hashtags trending this hour).

    counts = (tags.window(Tumbling(size=timedelta(hours=1), grace=timedelta(minutes=5)),
                          step="tag-counts")
                  .aggregate(Count())
                  .final())
    counts.top_k(10, by=lambda n: n, step="trending").to(TRENDING)

A window step emits one result per key and window; `top_k` collects the results of all the
keys of one partition for one window and, when the window closes (the watermark reaches its
end plus the window step's grace, the moment `.final()` emits), emits one `Ranking`: the k
keys with the largest `by(result)`, largest first, ties broken by key (see
`aggregates.heaviest`). After `.updates()` it keeps each key's latest result in state until
then; after `.final()` every result of a window arrives in the batch that closes it, so it
ranks them at once and keeps nothing.

Scope: **per partition**. A key's records all come from one partition, so a ranking covers
the keys of that partition only (what the task holding it can see without a shuffle). For a
global top k, write the rankings (or the per-key results) to a topic with one partition and
rank again in a second job reading it: the global top k is among the partitions' top k
(rank each partition with the same k, or more).

    partial = Job("trending-global", ...)   # source: the rankings topic, one partition
    (partial.source("trending-partial", Ranking, key=lambda r: "all",
                    event_time=lambda r: r.window.start_time)
        .flat_map(lambda r: r.top)
        .window(Tumbling(size=timedelta(hours=1), grace=...), step="global")
        .aggregate(TopK(10, of=lambda e: e[0], weight=lambda e: e[1]))
        .final()
        .to(TRENDING))

(Its grace is how far apart in event time the partitions' rankings of one window may
arrive: partitions progress at their own pace.) The output items are keyed by the source
partition, so one partition's rankings stay together (and in order) on a topic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from pipeline.streams.aggregates import heaviest
from pipeline.streams.items import Item, Window, Windowed, duration_millis
from pipeline.streams.job import Node
from pipeline.streams.operators import Context, StatefulOperator

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Ranking(Generic[K, R]):
    """The top keys of one window in one partition: (key, result) pairs, best first."""

    window: Window
    partition: int
    top: tuple[tuple[K, R], ...]


class TopKOperator(StatefulOperator):
    """Collects a window's results per partition and ranks them when the window closes.

    State (only after `.updates()`): `(start, end, key) → latest result`. Derived and
    rebuilt on restore: per partition, the windows and their keys."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.k: int = node.params["k"]
        self.by: Callable[[Any], float] = node.params["by"]
        window_step: Node = node.params["window"]
        self.grace = duration_millis(window_step.params["kind"].grace)
        self.keep = not window_step.params["final_only"]
        # part → (start, end) → key → result, in arrival order
        self.windows: dict[int, dict[tuple[int, int], dict[Hashable, Any]]] = {}

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        assert self.state is not None
        keep = self.keep
        for item in items:
            result: Windowed[Any, Any] = item.value
            bounds = (result.window.start, result.window.end)
            windows = self.windows.get(item.part)
            if windows is None:
                windows = self.windows[item.part] = {}
            keys = windows.get(bounds)
            if keys is None:
                keys = windows[bounds] = {}
            keys[result.key] = result.value
            if keep:
                skey = (*bounds, result.key)
                self.state.part(item.part)[skey] = result.value
                self.state.dirty(item.part).add(skey)

    def finish(self, ctx: Context, watermarks: Mapping[int, int]) -> None:
        assert self.state is not None
        out: list[Item[Any, Any]] = []
        grace, by, k = self.grace, self.by, self.k
        for part, windows in self.windows.items():
            wm = watermarks.get(part)
            if wm is None:
                continue
            closed = sorted(bounds for bounds in windows if bounds[1] + grace <= wm)
            self.windows_closed += len(closed)
            for start, end in closed:
                keys = windows.pop((start, end))
                ranked = heaviest(((key, by(value)) for key, value in keys.items()), k)
                top = tuple((key, keys[key]) for key, _ in ranked)
                value = Ranking(Window(start, end), part, top)
                out.append(Item(part, part, end - 1, value, None, wm))
                if self.keep:
                    entries = self.state.part(part)
                    dirty = self.state.dirty(part)
                    for key in keys:
                        skey = (start, end, key)
                        del entries[skey]
                        dirty.add(skey)
        self.emit(out, ctx)

    def restored(self, part: int) -> None:
        assert self.state is not None
        windows: dict[tuple[int, int], dict[Hashable, Any]] = {}
        entries = cast("dict[tuple[int, int, Hashable], Any]", self.state.part(part))
        for (start, end, key), value in entries.items():
            windows.setdefault((start, end), {})[key] = value
        self.windows[part] = windows

    def release(self, part: int) -> None:
        super().release(part)
        self.windows.pop(part, None)
