"""The sensor reference table operators edit: per-sensor location and alert thresholds.

Kafka Connect's Debezium PostgreSQL source (`connectors/sensor-metadata.json`) streams its
changes into the compacted topic `topics.sensor_metadata`, from which jobs read it as a table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sensor_metadata",
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        # Alert thresholds of this sensor (null: the sensor type's default applies).
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("critical_low", sa.Float(), nullable=True),
        sa.Column("critical_high", sa.Float(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sensor_id", name="pk_sensor_metadata"),
    )


def downgrade() -> None:
    op.drop_table("sensor_metadata")
