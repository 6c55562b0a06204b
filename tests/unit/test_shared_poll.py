"""One poll per live channel: the store is read once per interval whoever listens, every
listener gets each changed frame, and the poll runs only while someone listens."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.application.errors import StoreUnavailable
from pipeline.application.shared_poll import SharedPoll


class Store:
    """A table whose snapshot is `frame`, counting its reads."""

    def __init__(self) -> None:
        self.frame = b"v1"
        self.reads = 0
        self.fail_with: Exception | None = None

    async def read(self) -> bytes:
        self.reads += 1
        if self.fail_with is not None:
            raise self.fail_with
        return self.frame


async def test_many_listeners_share_one_read_per_interval() -> None:
    store = Store()
    poll = SharedPoll(store.read, 3600, "test")
    listeners = [poll.listen() for _ in range(5)]

    frames = await asyncio.gather(*(listener.next() for listener in listeners))

    assert frames == [b"v1"] * 5
    assert store.reads == 1
    for listener in listeners:
        await listener.close()


async def test_a_changed_frame_reaches_every_listener_and_an_unchanged_one_none() -> None:
    store = Store()
    poll = SharedPoll(store.read, 0.01, "test")
    first, second = poll.listen(), poll.listen()
    assert (await first.next(), await second.next()) == (b"v1", b"v1")

    while store.reads < 3:  # unchanged reads: nothing new for anyone
        await asyncio.sleep(0.01)
    unchanged = asyncio.ensure_future(first.next())
    await asyncio.sleep(0)
    assert not unchanged.done()
    store.frame = b"v2"

    assert (await unchanged, await second.next()) == (b"v2", b"v2")
    await first.close()
    await second.close()


async def test_a_listener_joining_later_gets_the_latest_frame_without_a_read() -> None:
    store = Store()
    poll = SharedPoll(store.read, 3600, "test")
    first = poll.listen()
    await first.next()

    late = poll.listen()

    assert await late.next() == b"v1"
    assert store.reads == 1
    await first.close()
    await late.close()


async def test_the_poll_stops_with_its_last_listener_and_starts_with_the_next() -> None:
    store = Store()
    poll = SharedPoll(store.read, 0.01, "test")
    listener = poll.listen()
    await listener.next()
    await listener.close()
    await listener.close()
    reads = store.reads

    await asyncio.sleep(0.05)

    assert store.reads == reads
    assert poll.listeners == 0
    again = poll.listen()
    store.frame = b"v2"
    assert await again.next() == b"v2"
    await again.close()


async def test_a_transient_failure_is_retried_at_the_next_interval() -> None:
    store = Store()
    store.fail_with = StoreUnavailable("down")
    poll = SharedPoll(store.read, 0.01, "test")
    listener = poll.listen()
    while store.reads < 2:
        await asyncio.sleep(0.01)

    store.fail_with = None

    assert await listener.next() == b"v1"
    await listener.close()


async def test_any_other_failure_reaches_every_listener() -> None:
    store = Store()
    store.fail_with = RuntimeError("a bug")
    poll = SharedPoll(store.read, 0.01, "test")
    first, second = poll.listen(), poll.listen()

    for listener in (first, second):
        with pytest.raises(RuntimeError, match="a bug"):
            await listener.next()
        await listener.close()
