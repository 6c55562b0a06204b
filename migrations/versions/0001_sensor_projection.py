"""Sensor projection: readings, one-minute aggregates, alerts (with outbox), consumer offsets.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from the application, so this migration keeps
# creating the same schema however the application's table definitions change later.
NOW = sa.text("CURRENT_TIMESTAMP")


def Timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "readings",
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("time", Timestamp(), nullable=False),
        sa.Column("sensor_type", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("battery_level", sa.Double(), nullable=True),
        sa.Column("signal_strength", sa.Double(), nullable=True),
        sa.Column("source_topic", sa.Text(), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", Timestamp(), server_default=NOW, nullable=False),
        # The natural key: replaying the log inserts nothing twice.
        sa.PrimaryKeyConstraint("sensor_id", "time", name="pk_readings"),
    )
    op.create_index("ix_readings_time", "readings", [sa.text("time DESC")])

    op.create_table(
        "reading_aggregates_1m",
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("window_start", Timestamp(), nullable=False),
        sa.Column("window_end", Timestamp(), nullable=False),
        sa.Column("sensor_type", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("mean", sa.Double(), nullable=False),
        sa.Column("stddev", sa.Double(), nullable=False),
        sa.Column("m2", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", Timestamp(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("sensor_id", "window_start", name="pk_reading_aggregates_1m"),
    )

    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("time", Timestamp(), nullable=False),
        sa.Column("sensor_type", sa.Text(), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("created_at", Timestamp(), server_default=NOW, nullable=False),
        sa.Column("published_at", Timestamp(), nullable=True),
        sa.Column("acknowledged_at", Timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_time", "alerts", ["time"])
    op.create_index("ix_alerts_source_time", "alerts", ["source", "time"])
    # The outbox relay scans only what is left to publish.
    op.create_index(
        "ix_alerts_unpublished",
        "alerts",
        ["time"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )

    op.create_table(
        "consumer_offsets",
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", Timestamp(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "topic", "partition", name="pk_consumer_offsets"),
    )


def downgrade() -> None:
    op.drop_table("consumer_offsets")
    op.drop_index("ix_alerts_unpublished", table_name="alerts")
    op.drop_index("ix_alerts_source_time", table_name="alerts")
    op.drop_index("ix_alerts_time", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("reading_aggregates_1m")
    op.drop_index("ix_readings_time", table_name="readings")
    op.drop_table("readings")
