"""The shop job's tables: sessions, the funnel per five minutes, revenue per minute and
currency, top products per hour-long window (every minute).

Window results are computed per source partition, so the partition is part of their natural
key; the queries add the partitions up.

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-30 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
MONEY = sa.Numeric(18, 2)


def upgrade() -> None:
    op.create_table(
        "shop_sessions",
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", MONEY, nullable=False),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("session_id", "started_at", name="pk_shop_sessions"),
    )
    op.create_index("ix_shop_sessions_ended_at", "shop_sessions", ["ended_at"])
    op.create_table(
        "shop_funnel_5m",
        sa.Column("window_start", TIME, nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("window_end", TIME, nullable=False),
        sa.Column("searches", sa.BigInteger(), nullable=False),
        sa.Column("views", sa.BigInteger(), nullable=False),
        sa.Column("carts", sa.BigInteger(), nullable=False),
        sa.Column("purchases", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("window_start", "partition", name="pk_shop_funnel_5m"),
    )
    op.create_table(
        "shop_revenue_1m",
        sa.Column("minute", TIME, nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("revenue", MONEY, nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "currency", "partition", name="pk_shop_revenue_1m"),
    )
    op.create_table(
        "shop_top_products_1h",
        sa.Column("window_start", TIME, nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("window_end", TIME, nullable=False),
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("revenue_eur", MONEY, nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "window_start", "partition", "rank", name="pk_shop_top_products_1h"
        ),
    )


def downgrade() -> None:
    op.drop_table("shop_top_products_1h")
    op.drop_table("shop_revenue_1m")
    op.drop_table("shop_funnel_5m")
    op.drop_index("ix_shop_sessions_ended_at", table_name="shop_sessions")
    op.drop_table("shop_sessions")
