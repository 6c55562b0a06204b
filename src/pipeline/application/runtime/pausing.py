"""Waiting without leaving the consumer group: pause the partitions, keep polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from pipeline.application.errors import TransientError
from pipeline.application.ports.event_log import EventConsumer
from pipeline.application.ports.records import Record
from pipeline.application.runtime.stats import WorkerStats

log = structlog.get_logger(__name__)

T = TypeVar("T")

KEEPALIVE_POLL_S = 0.25
"""Timeout of the polls that keep a paused consumer in its group: also how soon a stop
request ends a paused wait."""


class PausedWait:
    """Pauses a worker's consumer while it waits (for its database, or a retry delay) and
    polls it meanwhile: a member that stops polling for max.poll.interval.ms is expelled
    from its group, and its partitions with it."""

    def __init__(
        self,
        consumer: EventConsumer,
        *,
        stats: WorkerStats,
        stopped: Callable[[], bool],
        max_records: int,
    ) -> None:
        self._consumer = consumer
        self._stats = stats
        self._stopped = stopped
        self._max_records = max_records
        self.carry: list[Record] = []
        """Records a paused poll returned after all: never dropped, the worker's next."""

    async def around(self, wait: Callable[[], Awaitable[T]]) -> T:
        """Run `wait` with the consumer paused; resume it afterwards, however it ends."""
        await self._consumer.pause()
        self._stats.pauses += 1
        started = time.monotonic()
        try:
            return await wait()
        finally:
            paused = time.monotonic() - started
            self._stats.paused_seconds += paused
            await self._consumer.resume()
            log.info("partitions resumed", paused_s=round(paused, 2))

    async def keep_alive(self, seconds: float) -> None:
        """Poll the paused consumer for `seconds`, or until stopped."""
        deadline = time.monotonic() + seconds
        while not self._stopped():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                stray = await self._consumer.poll(
                    self._max_records, min(remaining, KEEPALIVE_POLL_S)
                )
            except TransientError as error:
                # The broker away too: the wait goes on, the next poll tries again.
                log.debug("keep-alive poll failed", error=str(error))
                await asyncio.sleep(min(remaining, KEEPALIVE_POLL_S))
                continue
            if stray:
                # A paused consumer returns nothing; should one not, its records are
                # handled after the batch in hand rather than lost.
                self.carry.extend(stray)
