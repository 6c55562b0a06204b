"""The payments job's tables, read: flagged transactions, per-rule counts, outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from pipeline.domain.fraud import FlaggedTransaction, FraudRule, TransactionOutcome


@dataclass(frozen=True, slots=True)
class FlaggedPosition:
    """Where a page of flagged transactions (newest first, ties by transaction id) ended:
    the next page starts after it (keyset pagination)."""

    timestamp: datetime
    transaction_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlaggedFilter:
    """Which flagged transactions a query wants; None means any. `since` is inclusive,
    `until` exclusive."""

    rule: FraudRule | None = None
    account_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@runtime_checkable
class PaymentQueries(Protocol):
    """Reads the payments job's tables."""

    async def find_flagged(
        self, query: FlaggedFilter, *, after: FlaggedPosition | None = None, limit: int = 100
    ) -> list[FlaggedTransaction]:
        """Flagged transactions matching `query`, newest first, starting after `after`."""
        ...

    async def rule_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[FraudRule, int]:
        """How many transactions each rule flagged in [since, until) (every rule, 0 too)."""
        ...

    async def outcomes_of(self, transaction_id: str) -> list[TransactionOutcome]:
        """The transaction's stored outcomes, in outcome time order (none: empty)."""
        ...
