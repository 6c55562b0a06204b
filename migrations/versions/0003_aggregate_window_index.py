"""Index the one-minute aggregates by window start: window statistics read whole minutes from
them instead of scanning every reading of the window.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_reading_aggregates_1m_window_start", "reading_aggregates_1m", ["window_start"]
    )


def downgrade() -> None:
    op.drop_index("ix_reading_aggregates_1m_window_start", table_name="reading_aggregates_1m")
