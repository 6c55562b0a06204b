"""Mergeable aggregates: what a window step folds its records into.

An aggregate is four functions (the `Aggregate` protocol): `initial()` makes an empty
accumulator, `add(acc, value)` folds one value in, `merge(a, b)` folds two accumulators
together (session windows merging, hopping windows sharing nothing but the code), and
`result(acc)` is what leaves the step. Accumulators live in keyed state, so they must be
picklable; `add` and `merge` may mutate and return their first argument.

A user aggregate is any object with those four methods; `Aggregates(into=Row, a=..., b=...)`
combines several into one typed row.

`TopK` and `DistinctCount` rank and count the items of one window of one key (the hashtags
of a user's posts in an hour). To rank the keys themselves against each other (the hashtags
trending this hour), count per key and follow the window with `Stream.top_k`.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

V = TypeVar("V")
V_contra = TypeVar("V_contra", contravariant=True)
A = TypeVar("A")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T", bound=Hashable)


class Aggregate(Protocol[V_contra, A, R_co]):
    """A mergeable fold of values into a result."""

    def initial(self) -> A:
        """An empty accumulator."""
        ...

    def add(self, acc: A, value: V_contra) -> A:
        """`acc` with `value` folded in."""
        ...

    def merge(self, acc: A, other: A) -> A:
        """`acc` with `other` folded in (as if its values had been added one by one)."""
        ...

    def result(self, acc: A) -> R_co:
        """The result of the values folded into `acc`."""
        ...


def _identity(value: Any) -> Any:
    return value


class Count(Generic[V]):
    """How many values (that satisfy `where`, if given)."""

    def __init__(self, where: Callable[[V], bool] | None = None) -> None:
        self._where = where

    def initial(self) -> int:
        return 0

    def add(self, acc: int, value: V) -> int:
        where = self._where
        return acc + 1 if where is None or where(value) else acc

    def merge(self, acc: int, other: int) -> int:
        return acc + other

    def result(self, acc: int) -> int:
        return acc


class Sum(Generic[V]):
    """The sum of `of(value)` (over values that satisfy `where`, if given)."""

    def __init__(
        self, of: Callable[[V], float] = _identity, where: Callable[[V], bool] | None = None
    ) -> None:
        self._of = of
        self._where = where

    def initial(self) -> float:
        return 0.0

    def add(self, acc: float, value: V) -> float:
        where = self._where
        return acc + self._of(value) if where is None or where(value) else acc

    def merge(self, acc: float, other: float) -> float:
        return acc + other

    def result(self, acc: float) -> float:
        return acc


class Min(Generic[V]):
    """The smallest `of(value)`; None when there was none."""

    def __init__(self, of: Callable[[V], float] = _identity) -> None:
        self._of = of

    def initial(self) -> float | None:
        return None

    def add(self, acc: float | None, value: V) -> float | None:
        x = self._of(value)
        return x if acc is None or x < acc else acc

    def merge(self, acc: float | None, other: float | None) -> float | None:
        if acc is None:
            return other
        return acc if other is None or acc <= other else other

    def result(self, acc: float | None) -> float | None:
        return acc


class Max(Generic[V]):
    """The largest `of(value)`; None when there was none."""

    def __init__(self, of: Callable[[V], float] = _identity) -> None:
        self._of = of

    def initial(self) -> float | None:
        return None

    def add(self, acc: float | None, value: V) -> float | None:
        x = self._of(value)
        return x if acc is None or x > acc else acc

    def merge(self, acc: float | None, other: float | None) -> float | None:
        if acc is None:
            return other
        return acc if other is None or acc >= other else other

    def result(self, acc: float | None) -> float | None:
        return acc


class RunningStats:
    """Count, mean, sum of squared deviations (m2), min and max in one pass (Welford),
    mergeable with Chan et al.'s parallel formula. The accumulator of `Stats` and `Mean`."""

    __slots__ = ("count", "m2", "max", "mean", "min")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Fold one value in."""
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        # Comparisons, not min()/max(): this runs once per value on the hot path.
        if value < self.min:  # noqa: PLR1730
            self.min = value
        if value > self.max:  # noqa: PLR1730
            self.max = value

    def merge(self, other: RunningStats) -> None:
        """Fold another set of statistics in."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean, other.m2
            self.min, self.max = other.min, other.max
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def stddev(self) -> float:
        """Population standard deviation (0.0 for fewer than two values)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    def __getstate__(self) -> tuple[int, float, float, float, float]:
        return (self.count, self.mean, self.m2, self.min, self.max)

    def __setstate__(self, state: tuple[int, float, float, float, float]) -> None:
        self.count, self.mean, self.m2, self.min, self.max = state

    def __repr__(self) -> str:
        return (
            f"RunningStats(count={self.count}, mean={self.mean}, stddev={self.stddev}, "
            f"min={self.min}, max={self.max})"
        )


@dataclass(frozen=True, slots=True)
class StatsResult:
    """Statistics of a window's values. `stddev` is the population standard deviation;
    `m2` (the sum of squared deviations from the mean) lets a reader merge two results."""

    count: int
    mean: float
    stddev: float
    min: float
    max: float
    m2: float


class Stats(Generic[V]):
    """Count, mean, population stddev, min and max of `of(value)`."""

    def __init__(self, of: Callable[[V], float] = _identity) -> None:
        self._of = of

    def initial(self) -> RunningStats:
        return RunningStats()

    def add(self, acc: RunningStats, value: V) -> RunningStats:
        acc.add(self._of(value))
        return acc

    def merge(self, acc: RunningStats, other: RunningStats) -> RunningStats:
        acc.merge(other)
        return acc

    def result(self, acc: RunningStats) -> StatsResult:
        # Positional: one result per window and batch in updates mode.
        return StatsResult(acc.count, acc.mean, acc.stddev, acc.min, acc.max, acc.m2)


class Mean(Generic[V]):
    """The arithmetic mean of `of(value)`; None when there was none."""

    def __init__(self, of: Callable[[V], float] = _identity) -> None:
        self._stats: Stats[V] = Stats(of)

    def initial(self) -> RunningStats:
        return RunningStats()

    def add(self, acc: RunningStats, value: V) -> RunningStats:
        return self._stats.add(acc, value)

    def merge(self, acc: RunningStats, other: RunningStats) -> RunningStats:
        return self._stats.merge(acc, other)

    def result(self, acc: RunningStats) -> float | None:
        return acc.mean if acc.count else None


class Collect(Generic[V, R]):
    """The list of `of(value)` in arrival order (merged lists keep each side's order);
    at most `limit` values are kept when given (the first ones)."""

    def __init__(self, of: Callable[[V], R] = _identity, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        self._of = of
        self._limit = limit

    def initial(self) -> list[R]:
        return []

    def add(self, acc: list[R], value: V) -> list[R]:
        if self._limit is None or len(acc) < self._limit:
            acc.append(self._of(value))
        return acc

    def merge(self, acc: list[R], other: list[R]) -> list[R]:
        acc.extend(other)
        if self._limit is not None:
            del acc[self._limit :]
        return acc

    def result(self, acc: list[R]) -> list[R]:
        return list(acc)


class Aggregates(Generic[V, R]):
    """Several aggregates over the same values, their results passed by name to `into`
    (a dataclass or any callable taking those keyword arguments) — a typed row, not a dict."""

    def __init__(self, into: Callable[..., R], **parts: Aggregate[V, Any, Any]) -> None:
        if not parts:
            raise ValueError("Aggregates needs at least one named aggregate")
        self._into = into
        self._names = tuple(parts)
        self._parts = tuple(parts.values())

    def initial(self) -> list[Any]:
        return [part.initial() for part in self._parts]

    def add(self, acc: list[Any], value: V) -> list[Any]:
        for i, part in enumerate(self._parts):
            acc[i] = part.add(acc[i], value)
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        for i, part in enumerate(self._parts):
            acc[i] = part.merge(acc[i], other[i])
        return acc

    def result(self, acc: list[Any]) -> R:
        parts = zip(self._names, self._parts, acc, strict=True)
        return self._into(**{name: part.result(a) for name, part, a in parts})


def heaviest(weights: Iterable[tuple[T, float]], k: int) -> list[tuple[T, float]]:
    """The `k` heaviest (item, weight) pairs, heaviest first. Equal weights are ordered by
    item (by the items' `repr` when they cannot be compared with each other), so a ranking
    never depends on the order the items were seen in."""
    pairs = list(weights)
    try:
        return heapq.nsmallest(k, pairs, key=_by_weight_then_item)
    except TypeError:
        return heapq.nsmallest(k, pairs, key=_by_weight_then_repr)


def _by_weight_then_item(pair: tuple[Any, float]) -> tuple[float, Any]:
    return -pair[1], pair[0]


def _by_weight_then_repr(pair: tuple[Any, float]) -> tuple[float, str]:
    return -pair[1], repr(pair[0])


class TopK(Generic[V, T]):
    """The `k` most frequent items `of(value)`, as (item, count) pairs, most frequent first —
    or, with `weight`, the heaviest: (item, sum of `weight(value)`). Ties are broken by item
    (see `heaviest`). Exact: the accumulator holds every distinct item of the window, so
    use it where items per window are thousands, not millions."""

    def __init__(
        self,
        k: int,
        of: Callable[[V], T] = _identity,
        weight: Callable[[V], float] | None = None,
    ) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        self._k = k
        self._of = of
        self._weight = weight

    def initial(self) -> dict[T, float]:
        return {}

    def add(self, acc: dict[T, float], value: V) -> dict[T, float]:
        item = self._of(value)
        weight = self._weight
        acc[item] = acc.get(item, 0) + (1 if weight is None else weight(value))
        return acc

    def merge(self, acc: dict[T, float], other: dict[T, float]) -> dict[T, float]:
        for item, weight in other.items():
            acc[item] = acc.get(item, 0) + weight
        return acc

    def result(self, acc: dict[T, float]) -> list[tuple[T, float]]:
        return heaviest(acc.items(), self._k)


class DistinctCount(Generic[V]):
    """How many distinct items `of(value)` there were.

    Exact by default: the accumulator is the set of items. With `approximate=True` it is a
    HyperLogLog sketch of `2**precision` one-byte registers (4 KiB at the default 12) whose
    relative standard error is 1.04/√(2**precision): 1.6% at 12, 0.8% at 14 (a result is
    within twice that 95% of the time). Up to 2**precision / 16 distinct items it counts
    exactly (it keeps their 64-bit hashes, so small windows stay small and exact), then
    switches to the registers. Sketches merge without loss (register-wise maximum), so a
    merged result is the one a single pass would give. Items are hashed with BLAKE2b over
    their text (`str`, `bytes`) or `repr` (anything else: give items a stable repr, such as
    ints, strings or tuples of them).
    """

    def __init__(
        self,
        of: Callable[[V], Hashable] = _identity,
        *,
        approximate: bool = False,
        precision: int = 12,
    ) -> None:
        if not 4 <= precision <= 16:
            raise ValueError("precision must be between 4 and 16")
        self._of = of
        self._approximate = approximate
        self._p = precision
        self._m = 1 << precision
        self._exact_up_to = self._m // 16
        self._rest = 64 - precision

    def initial(self) -> set[Any] | bytearray:
        return set()

    def add(self, acc: set[Any] | bytearray, value: V) -> set[Any] | bytearray:
        item = self._of(value)
        if not self._approximate:
            assert isinstance(acc, set)
            acc.add(item)
            return acc
        h = _hash64(item)
        if isinstance(acc, set):
            acc.add(h)
            return self._registers(acc) if len(acc) > self._exact_up_to else acc
        self._observe(acc, h)
        return acc

    def merge(self, acc: set[Any] | bytearray, other: set[Any] | bytearray) -> set[Any] | bytearray:
        if isinstance(acc, set):
            if isinstance(other, set):
                acc |= other
                if self._approximate and len(acc) > self._exact_up_to:
                    return self._registers(acc)
                return acc
            acc, other = bytearray(other), acc
        if isinstance(other, set):
            for h in other:
                self._observe(acc, h)
        else:
            acc[:] = bytes(map(max, acc, other))
        return acc

    def result(self, acc: set[Any] | bytearray) -> int:
        if isinstance(acc, set):
            return len(acc)
        m = self._m
        zeros = acc.count(0)
        estimate = _alpha(m) * m * m / math.fsum(2.0**-r for r in acc)
        if estimate <= 2.5 * m and zeros:
            estimate = m * math.log(m / zeros)  # linear counting: better for few items
        return round(estimate)

    def _registers(self, hashes: set[int]) -> bytearray:
        registers = bytearray(self._m)
        for h in hashes:
            self._observe(registers, h)
        return registers

    def _observe(self, registers: bytearray, h: int) -> None:
        rest = self._rest
        index = h >> rest
        rank = rest - (h & ((1 << rest) - 1)).bit_length() + 1
        if rank > registers[index]:  # noqa: PLR1730 - once per item: no call
            registers[index] = rank


def _hash64(item: object) -> int:
    if isinstance(item, str):
        data = b"s" + item.encode()
    elif isinstance(item, bytes):
        data = b"b" + item
    else:
        data = b"r" + repr(item).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _alpha(m: int) -> float:
    """HyperLogLog's bias correction for `m` registers (Flajolet et al., 2007)."""
    return {16: 0.673, 32: 0.697, 64: 0.709}.get(m, 0.7213 / (1 + 1.079 / m))
