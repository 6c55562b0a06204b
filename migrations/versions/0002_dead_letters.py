"""Dead letters: records the sensor projection could not process, with why.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def Timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("source_topic", sa.Text(), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("record_key", sa.LargeBinary(), nullable=True),
        sa.Column("record_value", sa.LargeBinary(), nullable=True),
        sa.Column("record_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("error_class", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("stack_trace", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", Timestamp(), nullable=False),
        sa.Column("last_failed_at", Timestamp(), nullable=False),
        sa.Column("worker_id", sa.Text(), nullable=False),
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("stored_at", Timestamp(), server_default=NOW, nullable=False),
        # The natural key: where the record was read, so storing a batch twice is harmless.
        sa.PrimaryKeyConstraint(
            "source_topic", "source_partition", "source_offset", name="pk_dead_letters"
        ),
    )
    op.create_index("ix_dead_letters_error_class", "dead_letters", ["error_class"])
    op.create_index("ix_dead_letters_last_failed_at", "dead_letters", ["last_failed_at"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_last_failed_at", table_name="dead_letters")
    op.drop_index("ix_dead_letters_error_class", table_name="dead_letters")
    op.drop_table("dead_letters")
