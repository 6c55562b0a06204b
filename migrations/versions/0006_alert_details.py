"""Alerts of every stream: which stream, and a model's or rules' score, reasons and features.

Until now every alert was a sensor threshold alert. The shop, payments and social jobs and the
anomaly model raise alerts into the same table and outbox, so an alert also says which stream
it is about (`domain`, 'sensors' for the rows already stored), how suspicious it is (`score`),
which rules fired (`reasons`, a JSON list) and, for a model's alert, the model's version and
the features it scored (`features`, a JSON object).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("domain", sa.Text(), server_default=sa.text("'sensors'"), nullable=False)
        )
        batch.add_column(sa.Column("score", sa.Double(), nullable=True))
        batch.add_column(sa.Column("reasons", JSON, server_default=sa.text("'[]'"), nullable=False))
        batch.add_column(sa.Column("model_version", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("features", JSON, server_default=sa.text("'{}'"), nullable=False)
        )
    # Each stream's alert feed reads its own alerts, newest first.
    op.create_index("ix_alerts_domain_time", "alerts", ["domain", "time"])


def downgrade() -> None:
    op.drop_index("ix_alerts_domain_time", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        for column in ("features", "model_version", "reasons", "score", "domain"):
            batch.drop_column(column)
