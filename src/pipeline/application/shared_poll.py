"""One poll of a store per live channel, shared by every connection to it.

A live view that shows a snapshot of tables (rather than a stream of events) reads them at
an interval. Read per connection, N viewers cost N queries per interval; `SharedPoll` reads
once per interval while anyone listens, keeps the latest frame and wakes every listener
when it changes, as the sensor live feed reads its topics once per process for all its
subscribers. The loop starts with the first listener and stops with the last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from pipeline.application.errors import TransientError

log = structlog.get_logger(__name__)


class SharedPoll:
    """Calls `read()` every `interval` seconds while it has listeners; a listener gets the
    latest frame it has not seen yet. A read that fails transiently is logged and tried
    again at the next interval (the listeners keep the frame they have); any other error
    stops the poll and is raised to every listener (the next listener starts it again)."""

    def __init__(self, read: Callable[[], Awaitable[bytes]], interval: float, name: str) -> None:
        self._read = read
        self._interval = interval
        self._name = name
        self._frame = b""
        self._version = 0
        self._changed = asyncio.Event()
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None
        self._failed: Exception | None = None

    @property
    def listeners(self) -> int:
        """Connections listening now."""
        return self._listeners

    def listen(self) -> Listener:
        """A new listener; the poll starts if it is not running."""
        self._listeners += 1
        if self._task is None or self._task.done():
            self._failed = None
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)
        return Listener(self)

    async def frame_after(self, version: int) -> tuple[int, bytes]:
        """The latest frame and its version, once it is newer than `version`."""
        while self._version == version and self._failed is None:
            await self._changed.wait()
        if self._failed is not None:
            raise self._failed
        return self._version, self._frame

    async def leave(self) -> None:
        """One listener fewer: the poll stops with the last."""
        self._listeners -= 1
        if self._listeners or self._task is None:
            return
        task, self._task = self._task, None
        # Nobody holds a frame now: the next listener waits for a fresh read, not this one.
        self._frame, self._version = b"", 0
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            try:
                frame = await self._read()
            except TransientError as error:
                log.warning("live view cannot read the store", view=self._name, error=repr(error))
            except Exception as error:  # noqa: BLE001 - handed to every listener, raised there
                self._failed = error
                self._wake()
                return
            else:
                if frame != self._frame:
                    self._frame = frame
                    self._version += 1
                    self._wake()
            await asyncio.sleep(self._interval)

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class Listener:
    """One connection's view of a `SharedPoll`."""

    def __init__(self, poll: SharedPoll) -> None:
        self._poll = poll
        self._seen = 0
        self._closed = False

    async def next(self) -> bytes:
        """The latest frame, once there is one this listener has not had."""
        self._seen, frame = await self._poll.frame_after(self._seen)
        return frame

    async def close(self) -> None:
        """Stop listening. Safe to call twice."""
        if not self._closed:
            self._closed = True
            await self._poll.leave()
