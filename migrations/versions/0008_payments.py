"""The payments job's tables: flagged transactions with their reasons, and each
transaction's outcomes.

`flagged_transactions` holds one row per transaction a fraud rule fired on (its reasons as
a JSON list and its score); `fraud_flag_reasons` one row per rule and flagged transaction,
so per-rule counts and the rule filter are a GROUP BY and a join on either dialect;
`transaction_outcomes` the interval join of transactions with their authorisations,
declines and chargebacks ('none' when none came in time). All keyed by natural keys.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NOW = sa.text("CURRENT_TIMESTAMP")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flagged_transactions",
        sa.Column("transaction_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(20, 4), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("merchant", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("time", _timestamp(), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("created_at", _timestamp(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", name="pk_flagged_transactions"),
    )
    op.create_index(
        "ix_flagged_transactions_time", "flagged_transactions", ["time", "transaction_id"]
    )
    op.create_index(
        "ix_flagged_transactions_account_id_time", "flagged_transactions", ["account_id", "time"]
    )
    op.create_table(
        "fraud_flag_reasons",
        sa.Column("transaction_id", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("time", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", "rule", name="pk_fraud_flag_reasons"),
    )
    op.create_index("ix_fraud_flag_reasons_rule_time", "fraud_flag_reasons", ["rule", "time"])
    op.create_table(
        "transaction_outcomes",
        sa.Column("transaction_id", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(20, 4), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("transaction_time", _timestamp(), nullable=False),
        sa.Column("outcome_time", _timestamp(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("transaction_id", "outcome", name="pk_transaction_outcomes"),
    )


def downgrade() -> None:
    op.drop_table("transaction_outcomes")
    op.drop_index("ix_fraud_flag_reasons_rule_time", table_name="fraud_flag_reasons")
    op.drop_table("fraud_flag_reasons")
    op.drop_index("ix_flagged_transactions_account_id_time", table_name="flagged_transactions")
    op.drop_index("ix_flagged_transactions_time", table_name="flagged_transactions")
    op.drop_table("flagged_transactions")
