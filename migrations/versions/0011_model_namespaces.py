"""A namespace per model family in the database model store (`sensors`, `payments`): each
family has its own versions and its own current model. Existing models are the sensors'.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("anomaly_models") as batch:
        batch.add_column(
            sa.Column("namespace", sa.Text(), nullable=False, server_default="sensors")
        )
        batch.drop_constraint("pk_anomaly_models", type_="primary")
        batch.create_primary_key("pk_anomaly_models", ["namespace", "version"])


def downgrade() -> None:
    # Versions are unique per namespace only: the other families' models cannot stay.
    op.execute("DELETE FROM anomaly_models WHERE namespace <> 'sensors'")
    with op.batch_alter_table("anomaly_models") as batch:
        batch.drop_constraint("pk_anomaly_models", type_="primary")
        batch.create_primary_key("pk_anomaly_models", ["version"])
        batch.drop_column("namespace")
