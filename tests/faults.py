"""One fault-injecting checkpoint store for every test that needs the database to fail."""

from __future__ import annotations

from typing import Any

from pipeline.application.errors import StoreUnavailable
from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore, Committed


class FaultyCheckpoint:
    """Wraps a checkpoint store. Switches:

    - `failures`: how many commits fail next, with `error` (a transient outage by default);
    - `only_with_rows`: count only commits that write sink rows (a deadlock on the rows,
      while offset-only commits, e.g. a diversion's, go through);
    - `ping_fails`: the store does not answer pings (an outage, as opposed to a deadlock);
    - `events`: where "commit" is noted for every commit that went through.
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
    ) -> None:
        self.inner = inner
        self.failures = failures
        self.error = error or StoreUnavailable("database restarting")
        self.only_with_rows = only_with_rows
        self.ping_fails = ping_fails
        self.events = events
        self.commits = 0

    async def commit(self, batch: CheckpointBatch) -> Committed:
        if self.failures and (batch.writes or not self.only_with_rows):
            self.failures -= 1
            raise self.error
        committed = await self.inner.commit(batch)
        self.commits += 1
        if self.events is not None:
            self.events.append("commit")
        return committed

    async def ping(self) -> None:
        if self.ping_fails:
            raise StoreUnavailable("database is down")
        await self.inner.ping()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
