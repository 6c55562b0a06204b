"""Keyed state restored lazily: keys at once, each value when a step first reads it."""

from __future__ import annotations

import pickle
from typing import Any

from pipeline.streams import Tumbling
from pipeline.streams.state import KeyedState, StateChange, dumps
from tests.unit.streams.window_jobs import (
    Event,
    driver_for,
    results,
    seconds,
    send,
    window,
    windowed_job,
)

STEP = "window"
DECODED: list[str] = []
"""The names of the `Tracked` values unpickled so far."""


class Tracked:
    """A state value that records when it is unpickled."""

    def __init__(self, name: str, count: int = 0) -> None:
        self.name = name
        self.count = count

    def __setstate__(self, state: dict[str, Any]) -> None:
        DECODED.append(state["name"])
        self.__dict__.update(state)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tracked) and (self.name, self.count) == (other.name, other.count)

    def __hash__(self) -> int:
        return hash((self.name, self.count))


class TrackedCount:
    """Counts values in a `Tracked` accumulator named after the window's first value."""

    def initial(self) -> Tracked | None:
        return None

    def add(self, acc: Tracked | None, value: Event) -> Tracked:
        if acc is None:
            return Tracked(f"{value.key}@{value.at:g}", 1)
        acc.count += 1
        return acc

    def merge(self, acc: Tracked | None, other: Tracked | None) -> Tracked | None:
        raise NotImplementedError  # fixed windows never merge

    def result(self, acc: Tracked | None) -> int:
        return 0 if acc is None else acc.count


def restored(values: dict[Any, Any], part: int = 0) -> KeyedState:
    state = KeyedState(STEP)
    state.restore(part, [(dumps(key), dumps(value)) for key, value in values.items()])
    DECODED.clear()
    return state


def test_a_restore_decodes_no_value_until_a_step_reads_it() -> None:
    state = restored({("s-1", 0): Tracked("a", 3), ("s-2", 0): Tracked("b", 5)})

    entries = state.part(0)

    assert sorted(entries) == [("s-1", 0), ("s-2", 0)]
    assert DECODED == []
    assert entries.get(("s-2", 0)) == Tracked("b", 5)
    assert DECODED == ["b"]


def test_a_restore_from_a_dicts_items_reads_like_one_from_pairs() -> None:
    values = {("s-1", 0): Tracked("a", 3), ("s-2", 0): Tracked("b", 5)}
    latest = {dumps(key): dumps(value) for key, value in values.items()}
    state = KeyedState(STEP)
    state.restore(0, latest.items())  # what a changelog restore hands over
    DECODED.clear()

    entries = state.part(0)

    assert sorted(entries) == sorted(values)
    assert DECODED == []
    assert entries[("s-1", 0)] == values[("s-1", 0)]
    assert DECODED == ["a"]
    assert dict(entries) == values


def test_a_value_is_decoded_once_and_then_read_as_it_was_changed() -> None:
    state = restored({"k": Tracked("a", 3)})
    entries = state.part(0)

    entries["k"].count += 1

    assert entries["k"] == Tracked("a", 4)
    assert DECODED == ["a"]


def test_every_way_of_reading_an_entry_gives_the_value_it_was_restored_from() -> None:
    values = {f"k{i}": Tracked(f"v{i}", i) for i in range(7)}
    state = restored(values)
    entries = state.part(0)

    assert entries["k0"] == values["k0"]
    assert entries.get("k1") == values["k1"]
    assert entries.get("missing", "default") == "default"
    assert entries.setdefault("k2", Tracked("other")) == values["k2"]
    assert entries.pop("k3") == values["k3"]
    assert entries.pop("missing", None) is None
    assert dict(entries) == {k: v for k, v in values.items() if k != "k3"}
    assert {**entries} == dict(entries)
    assert entries.copy() == dict(entries)
    assert list(entries.values()) == [v for k, v in values.items() if k != "k3"]
    assert entries.popitem() == ("k6", values["k6"])
    assert entries == {k: v for k, v in values.items() if k not in {"k3", "k6"}}
    assert sorted(DECODED) == sorted(f"v{i}" for i in range(7))


def test_an_entry_changed_but_never_read_is_written_back_as_the_bytes_it_came_from() -> None:
    # Protocol 2, as an older writer might have stored it: re-pickling would change the bytes.
    stored = pickle.dumps(Tracked("a", 3), protocol=2)
    state = KeyedState(STEP)
    state.restore(0, [(dumps("k"), stored)])
    DECODED.clear()

    state.dirty(0).add("k")

    assert state.changes() == [StateChange(STEP, 0, dumps("k"), stored)]
    assert DECODED == []


def test_an_entry_read_after_a_restore_is_written_back_with_its_changes() -> None:
    state = restored({"k": Tracked("a", 3), "untouched": Tracked("b", 1)})
    entries = state.part(0)

    entries["k"].count += 1
    state.dirty(0).add("k")

    assert state.changes() == [StateChange(STEP, 0, dumps("k"), dumps(Tracked("a", 4)))]
    assert DECODED == ["a"]


def test_restored_partitions_decode_and_release_independently() -> None:
    state = KeyedState(STEP)
    for part in (0, 1):
        state.restore(part, [(dumps("k"), dumps(Tracked(f"p{part}")))])
    DECODED.clear()

    assert state.part(1)["k"] == Tracked("p1")
    state.release(1)

    assert DECODED == ["p1"]
    assert state.size() == 1
    assert state.part(0)["k"] == Tracked("p0")


def test_an_entry_deleted_unread_is_never_decoded() -> None:
    state = restored({"closed": Tracked("a"), "open": Tracked("b")})

    del state.part(0)["closed"]

    assert DECODED == []
    assert dict(state.part(0)) == {"open": Tracked("b")}


def test_a_restored_window_closing_unread_is_dropped_without_being_decoded() -> None:
    driver = driver_for(
        windowed_job(Tumbling(size=seconds(10), grace=seconds(0)), TrackedCount(), final=False)
    )
    send(driver, Event("a", 1), Event("b", 2))
    driver.run()
    driver.crash()
    DECODED.clear()

    send(driver, Event("b", 3), Event("b", 15))  # b's window [0, 10) read; a's closes unread
    driver.run()

    assert DECODED == ["b@2"]
    assert results(driver)[2:] == [
        ("b", window(0, 10), 2, False),
        ("b", window(10, 20), 1, False),
    ]


def test_an_entry_overwritten_unread_keeps_its_new_value() -> None:
    state = restored({"over": Tracked("a"), "kept": Tracked("b")})
    entries = state.part(0)

    entries["over"] = Tracked("new")
    state.dirty(0).add("over")

    assert dict(entries) == {"over": Tracked("new"), "kept": Tracked("b")}
    assert state.changes() == [StateChange(STEP, 0, dumps("over"), dumps(Tracked("new")))]
    assert DECODED == ["b"]
