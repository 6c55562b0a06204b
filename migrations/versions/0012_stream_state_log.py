"""A log of the stream engine's state changes on PostgreSQL: one row per batch, partition and
step (its keys and values as arrays), folded into `stream_state` every few batches. A
batch's state was one upserted row per key; the sensors job's batches touch a window per
sensor, so that was as many row writes (and index entries) again as the batch had readings.

SQLite keeps upserting `stream_state` (the table is created there too, and stays empty).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BYTEA_ARRAY = sa.LargeBinary().with_variant(postgresql.ARRAY(sa.LargeBinary()), "postgresql")
"""`bytea[]`; a blob on SQLite, which has no arrays."""


def upgrade() -> None:
    op.create_table(
        "stream_state_log",
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("keys", BYTEA_ARRAY, nullable=False),
        sa.Column("vals", BYTEA_ARRAY, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "partition", "seq", name="pk_stream_state_log"),
    )


def downgrade() -> None:
    op.drop_table("stream_state_log")
