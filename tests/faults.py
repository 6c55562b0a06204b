"""One fault-injecting checkpoint store for every test that needs the database to fail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.application.errors import StoreRejected, StoreUnavailable
from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore, Committed


class FaultyCheckpoint:
    """Wraps a checkpoint store. Switches:

    - `failures`: how many commits fail next, with `error` (a transient outage by default);
    - `only_with_rows`: count only commits that write sink rows (a deadlock on the rows,
      while offset-only commits, e.g. a diversion's, go through);
    - `ping_fails`: the store does not answer pings (an outage, as opposed to a deadlock);
    - `events`: where "commit" is noted for every commit that went through;
    - `refuse`: rows the database refuses for good, like a constraint (`refusal` is raised
      for any commit holding one);
    - `fail_next`: errors the next commits raise, in order, before anything else;
    - `down`: an outage: every commit and ping fails while it is set.
    `attempts` counts every commit tried, `failed` those that raised.
    """

    def __init__(
        self,
        inner: CheckpointStore,
        *,
        failures: int = 0,
        error: Exception | None = None,
        only_with_rows: bool = False,
        ping_fails: bool = False,
        events: list[str] | None = None,
        refuse: Callable[[object], bool] | None = None,
        refusal: Exception | None = None,
    ) -> None:
        self.inner = inner
        self.failures = failures
        self.error = error or StoreUnavailable("database restarting")
        self.only_with_rows = only_with_rows
        self.ping_fails = ping_fails
        self.events = events
        self.refuse = refuse
        self.refusal = refusal or StoreRejected("new row violates check constraint")
        self.fail_next: list[Exception] = []
        self.commits = 0
        self.attempts = 0
        self.failed = 0
        self.down = False

    async def commit(self, batch: CheckpointBatch) -> Committed:
        self.attempts += 1
        try:
            committed = await self._commit(batch)
        except Exception:
            self.failed += 1
            raise
        self.commits += 1
        if self.events is not None:
            self.events.append("commit")
        return committed

    async def _commit(self, batch: CheckpointBatch) -> Committed:
        if self.down:
            raise StoreUnavailable("connection refused")
        if self.fail_next:
            raise self.fail_next.pop(0)
        refuse = self.refuse
        if refuse is not None and any(refuse(row) for w in batch.writes for row in w.rows):
            raise self.refusal
        if self.failures and (batch.writes or not self.only_with_rows):
            self.failures -= 1
            raise self.error
        return await self.inner.commit(batch)

    async def ping(self) -> None:
        if self.ping_fails or self.down:
            raise StoreUnavailable("database is down")
        await self.inner.ping()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
