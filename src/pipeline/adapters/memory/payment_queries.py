"""The payments job's tables read in memory, from the rows the declared in-memory sinks keep
(`adapters.memory.table_sinks`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipeline.application.ports.payments import FlaggedFilter, FlaggedPosition
from pipeline.domain.fraud import FlaggedTransaction, FraudRule, TransactionOutcome

if TYPE_CHECKING:
    from pipeline.adapters.memory.table_sinks import DeclaredRows

_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _within(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment < until)


def _after(flagged: FlaggedTransaction, position: FlaggedPosition) -> bool:
    if flagged.timestamp != position.timestamp:
        return flagged.timestamp < position.timestamp
    return flagged.transaction_id > position.transaction_id


class InMemoryPaymentQueries:
    """`PaymentQueries` over the in-memory rows of the payments tables."""

    def __init__(self, rows: DeclaredRows) -> None:
        self._rows = rows

    def _flagged(self) -> list[FlaggedTransaction]:
        return list(self._rows.get("flagged_transactions", {}).values())

    async def find_flagged(
        self, query: FlaggedFilter, *, after: FlaggedPosition | None = None, limit: int = 100
    ) -> list[FlaggedTransaction]:
        """Flagged transactions matching `query`, newest first, starting after `after`."""
        found = [
            f
            for f in self._flagged()
            if (query.rule is None or query.rule in f.reasons)
            and (query.account_id is None or f.account_id == query.account_id)
            and _within(f.timestamp, query.since, query.until)
            and (after is None or _after(f, after))
        ]
        # Newest first, ties by transaction id: as the SQL adapter orders them.
        found.sort(key=lambda f: f.transaction_id)
        found.sort(key=lambda f: f.timestamp, reverse=True)
        return found[:limit]

    async def rule_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[FraudRule, int]:
        """How many transactions each rule flagged in [since, until) (every rule, 0 too)."""
        counts = dict.fromkeys(FraudRule, 0)
        for f in self._flagged():
            if _within(f.timestamp, since, until):
                for rule in f.reasons:
                    counts[rule] += 1
        return counts

    async def outcomes_of(self, transaction_id: str) -> list[TransactionOutcome]:
        """The transaction's stored outcomes, in outcome time order (none: empty)."""
        found = [
            o
            for o in self._rows.get("transaction_outcomes", {}).values()
            if o.transaction_id == transaction_id
        ]
        found.sort(key=lambda o: (o.outcome_time or _EARLIEST, o.outcome))
        return found
