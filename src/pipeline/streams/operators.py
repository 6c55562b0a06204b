"""The running form of a plan's steps: each operator takes a batch of items at a time.

Work is per batch: an operator receives the list of items its parent produced from one
batch of records, makes its own list, and pushes that to its children. At the end of the
batch (`finish`) stateful operators emit what the batch's watermarks made ready (window
updates, closed windows) in plan order, so a window of windows sees its parent's results
before it finishes itself.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime
from typing import Any

from pipeline.streams.items import Item, KeyedBatch, Late, Rejection, from_millis
from pipeline.streams.job import Node
from pipeline.streams.state import KeyedState


class Context:
    """What one batch produced besides the items flowing between steps, and the wall-clock
    time it runs at (epoch milliseconds). `flush`: the worker is stopping, steps that hold
    results back (window updates emitted `every`) emit them now."""

    __slots__ = ("flush", "late", "now", "rejected", "sinks")

    def __init__(self, now: int, *, flush: bool = False) -> None:
        self.now = now
        self.flush = flush
        self.sinks: dict[str, list[Item[Any, Any]]] = {}
        self.rejected: list[Rejection] = []
        self.late: list[Late] = []


class Operator:
    """One step at run time."""

    state: KeyedState | None = None

    def __init__(self, node: Node) -> None:
        self.node = node
        self.children: list[Operator] = []

    def inlet(self, index: int, parent: Operator) -> Operator | None:
        """What `parent` (this step's parent number `index`) hands its items to: this
        operator by default; a join tells its two sides apart, and a table lookup takes no
        items from its table, only its state (None)."""
        del index, parent
        return self

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        """Handle a batch's items."""
        self.emit(items, ctx)

    def emit(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        """Hand `items` to every child."""
        if items:
            for child in self.children:
                child.push(items, ctx)

    def finish(self, ctx: Context, watermarks: Mapping[int, int]) -> None:
        """The batch is over and each partition's watermark is where it is: emit what that
        makes ready. Stateless steps have nothing to do."""

    def restored(self, part: int) -> None:
        """`part`'s state was just restored: rebuild what is derived from it."""

    def release(self, part: int) -> None:
        """`part` was revoked: forget what is derived from its state."""


class MapOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        fn = self.node.params["fn"]
        self.emit([Item(i.part, i.key, i.time, fn(i.value), i.origin, i.wm) for i in items], ctx)


class FilterOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        fn = self.node.params["fn"]
        self.emit([i for i in items if fn(i.value)], ctx)


class FlatMapOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        fn = self.node.params["fn"]
        self.emit(
            [Item(i.part, i.key, i.time, v, i.origin, i.wm) for i in items for v in fn(i.value)],
            ctx,
        )


class MapBatchOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        values = self.node.params["fn"]([i.value for i in items])
        if len(values) != len(items):
            raise ValueError(
                f"step {self.node.id!r} returned {len(values)} values for {len(items)}"
            )
        self.emit(
            [
                Item(i.part, i.key, i.time, v, i.origin, i.wm)
                for i, v in zip(items, values, strict=True)
            ],
            ctx,
        )


class KeyByOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        fn = self.node.params["fn"]
        self.emit([Item(i.part, fn(i.value), i.time, i.value, i.origin, i.wm) for i in items], ctx)


class PeekOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        fn = self.node.params["fn"]
        for i in items:
            fn(i.value)
        self.emit(items, ctx)


def rule_of(error: BaseException) -> str:
    """The class a rejection is filed under: the error's `rule` (domain errors) or
    `error_class` (application errors), else its type's name."""
    for attribute in ("rule", "error_class"):
        value = getattr(error, attribute, None)
        if isinstance(value, str):
            return value
    return type(error).__name__


class ValidateOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        params = self.node.params
        check: Callable[..., object] = params["fn"]
        # A rule that asks for the time gets the batch's, converted once for the batch.
        now: tuple[datetime, ...] = (from_millis(ctx.now),) if params["wall_clock"] else ()
        rejects: tuple[type[BaseException], ...] = params["rejects"]
        dead_letter: bool = params["dead_letter"]
        step = self.node.id
        screen: Callable[..., Iterable[int]] | None = params.get("screen")
        if screen is not None:
            self._screened(items, screen([item.value for item in items], *now), check, now, ctx)
            return
        valid: list[Item[Any, Any]] = []
        for item in items:
            try:
                check(item.value, *now)
            except rejects as error:
                rule = rule_of(error)
                ctx.rejected.append(Rejection(item.origin, step, rule, error, dead_letter))
                continue
            valid.append(item)
        self.emit(valid, ctx)

    def _screened(
        self,
        items: list[Item[Any, Any]],
        suspects: Iterable[int],
        check: Callable[..., object],
        now: tuple[datetime, ...],
        ctx: Context,
    ) -> None:
        """Only the items the screen named meet `check`; the rest pass."""
        rejects: tuple[type[BaseException], ...] = self.node.params["rejects"]
        dead_letter: bool = self.node.params["dead_letter"]
        step = self.node.id
        refused: set[int] = set()
        for index in suspects:
            item = items[index]
            try:
                check(item.value, *now)
            except rejects as error:
                ctx.rejected.append(
                    Rejection(item.origin, step, rule_of(error), error, dead_letter)
                )
                refused.add(index)
        if refused:
            items = [item for index, item in enumerate(items) if index not in refused]
        self.emit(items, ctx)


class SplitOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        fn = self.node.params["fn"]
        matching: list[Item[Any, Any]] = []
        rest: list[Item[Any, Any]] = []
        for item in items:
            (matching if fn(item.value) else rest).append(item)
        for child in self.children:
            chosen = matching if child.node.params["side"] else rest
            if chosen:
                child.push(chosen, ctx)


class SinkOperator(Operator):
    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        name = self.node.params["sink"].name
        found = ctx.sinks.get(name)
        if found is None:
            ctx.sinks[name] = list(items)
        else:
            found.extend(items)


class PassOperator(Operator):
    """Branches, window results and late outputs: their parent chose the items."""


class StatefulOperator(Operator):
    """An operator that keeps keyed state under its step id."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.state = KeyedState(node.id)
        self.windows_closed = 0
        """Windows this step has closed since it was built (window and ranking steps)."""
        self.results: list[Operator] = []
        self.late: list[Operator] = []
        self.horizons: dict[int, int] = {}
        """Per partition read from the middle of its log: windows starting earlier are
        incomplete and their results are not emitted (shared with the task)."""

    def wire(self) -> None:
        """Sort the children into result and late outputs (after they are all built)."""
        self.results = [c for c in self.children if c.node.kind != "late"]
        self.late = [c for c in self.children if c.node.kind == "late"]

    def emit(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        if items:
            for child in self.results:
                child.push(items, ctx)

    def send_late(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        """Route late items to the late output, or hand them to the runtime."""
        if not items:
            return
        if self.late:
            for child in self.late:
                child.push(items, ctx)
            return
        step = self.node.id
        ctx.late.extend(Late(i.origin, step, i) for i in items)

    def release(self, part: int) -> None:
        assert self.state is not None
        self.state.release(part)


Keyed = tuple[Hashable, int]


class ScanOperator(StatefulOperator):
    """A running fold per key: the key's state is the step's entry for it."""

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        fn = self.node.params["fn"]
        state = self.state
        assert state is not None
        out: list[Item[Any, Any]] = []
        last_part = -1
        entries: dict[Hashable, Any] = {}
        dirty: set[Hashable] = set()
        for i in items:
            if i.part != last_part:
                last_part = i.part
                entries, dirty = state.part(last_part), state.dirty(last_part)
            entries[i.key], value = fn(entries.get(i.key), i.value)
            dirty.add(i.key)
            out.append(Item(i.part, i.key, i.time, value, i.origin, i.wm))
        self.emit(out, ctx)


class ScanBatchOperator(StatefulOperator):
    """A running fold per key, a batch at a time: one call gets the batch's values and the
    states of the keys they carry (`KeyedBatch`), and returns every slot's new state and
    the values to emit, each with the index of the value it comes from."""

    def push(self, items: list[Item[Any, Any]], ctx: Context) -> None:
        state = self.state
        assert state is not None
        slots: list[int] = []
        keys: list[Hashable] = []
        parts: list[int] = []
        states: list[Any] = []
        last_part = -1
        entries: dict[Hashable, Any] = {}
        index: dict[Hashable, int] = {}
        indexes: dict[int, dict[Hashable, int]] = {}
        for i in items:
            if i.part != last_part:
                last_part = i.part
                entries = state.part(last_part)
                index = indexes.setdefault(last_part, {})
            slot = index.get(i.key)
            if slot is None:
                slot = index[i.key] = len(keys)
                keys.append(i.key)
                parts.append(last_part)
                states.append(entries.get(i.key))
            slots.append(slot)
        new, out = self.node.params["fn"](KeyedBatch([i.value for i in items], slots, keys, states))
        if len(new) != len(states):
            raise ValueError(
                f"step {self.node.id!r} returned {len(new)} states for {len(states)} keys"
            )
        for part, key, value in zip(parts, keys, new, strict=True):
            entries = state.part(part)
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = value
            state.dirty(part).add(key)
        emitted: list[Item[Any, Any]] = []
        for at, value in out:
            i = items[at]
            emitted.append(Item(i.part, i.key, i.time, value, i.origin, i.wm))
        self.emit(emitted, ctx)
