"""The social jobs' tables: trending tags per hop, each tag's scored hops, engagement per post.

Rows are keyed by their natural keys (hop and tag; post), so a replayed batch writes the same
keys. Engagement per author is summed from the per-post rows (index on author).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "social_trending",
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("window_start", "tag", name="pk_social_trending"),
    )
    op.create_table(
        "social_tag_history",
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("baseline", sa.Double(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("bursting", sa.Boolean(), nullable=False),
        sa.Column("burst_start", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tag", "window_start", name="pk_social_tag_history"),
    )
    op.create_index("ix_social_tag_history_window_start", "social_tag_history", ["window_start"])
    op.create_table(
        "social_post_engagement",
        sa.Column("post_id", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("posted_at", TIMESTAMP, nullable=False),
        sa.Column("likes", sa.BigInteger(), nullable=False),
        sa.Column("shares", sa.BigInteger(), nullable=False),
        sa.Column("engagements", sa.BigInteger(), nullable=False),
        sa.Column("last_engaged_at", TIMESTAMP, nullable=False),
        sa.Column(
            "updated_at", TIMESTAMP, server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.PrimaryKeyConstraint("post_id", name="pk_social_post_engagement"),
        postgresql_with={"fillfactor": 70},
    )
    op.create_index("ix_social_post_engagement_posted_at", "social_post_engagement", ["posted_at"])
    op.create_index("ix_social_post_engagement_author", "social_post_engagement", ["author"])


def downgrade() -> None:
    op.drop_table("social_post_engagement")
    op.drop_table("social_tag_history")
    op.drop_table("social_trending")
