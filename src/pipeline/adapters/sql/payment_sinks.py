"""The payments job's table sinks, declared (see `table_sinks`): flagged transactions, the
rules that flagged them, and transactions with their outcomes. Every row is a fact written
once, keyed by its natural key, so duplicates (a batch written again) are ignored."""

from __future__ import annotations

from typing import Any

from pipeline.adapters.sql import tables
from pipeline.adapters.sql.table_sinks import OnConflict, TableSink
from pipeline.domain.fraud import FlaggedTransaction, FlagReason, TransactionOutcome

FLAGGED_TRANSACTIONS: TableSink[FlaggedTransaction] = TableSink(
    tables.flagged_transactions,
    columns=(
        "transaction_id",
        "account_id",
        "amount",
        "currency",
        "merchant",
        "country",
        "channel",
        "time",
        "reasons",
        "score",
    ),
    values=lambda f: (
        f.transaction_id,
        f.account_id,
        f.amount,
        f.currency,
        f.merchant,
        f.country,
        f.channel.value,
        f.timestamp,
        [str(r) for r in f.reasons],
        f.score,
    ),
    on_conflict=OnConflict.IGNORE,
)
FLAG_REASONS: TableSink[FlagReason] = TableSink(
    tables.fraud_flag_reasons,
    columns=("transaction_id", "rule", "time"),
    values=lambda r: (r.transaction_id, r.rule.value, r.timestamp),
    on_conflict=OnConflict.IGNORE,
)
TRANSACTION_OUTCOMES: TableSink[TransactionOutcome] = TableSink(
    tables.transaction_outcomes,
    columns=(
        "transaction_id",
        "outcome",
        "account_id",
        "amount",
        "currency",
        "transaction_time",
        "outcome_time",
        "reason",
    ),
    values=lambda o: (
        o.transaction_id,
        o.outcome,
        o.account_id,
        o.amount,
        o.currency,
        o.transaction_time,
        o.outcome_time,
        o.reason,
    ),
    on_conflict=OnConflict.IGNORE,
)

PAYMENT_SINKS: dict[str, TableSink[Any]] = {
    "flagged_transactions": FLAGGED_TRANSACTIONS,
    "fraud_flag_reasons": FLAG_REASONS,
    "transaction_outcomes": TRANSACTION_OUTCOMES,
}
"""By the payments job's sink names."""
