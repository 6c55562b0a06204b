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


# Every group's and partition's log into `stream_state`, the last change of each key winning
# (as the checkpoint store's fold does for one partition): a downgrade loses no state.
_FOLD_ALL = """
WITH logged AS (
    DELETE FROM stream_state_log RETURNING group_id, "partition", step, seq, keys, vals
), latest AS (
    SELECT DISTINCT ON (l.group_id, l."partition", l.step, c.key)
           l.group_id, l."partition", l.step, c.key, c.val
    FROM logged AS l, unnest(l.keys, l.vals) AS c(key, val)
    ORDER BY l.group_id, l."partition", l.step, c.key, l.seq DESC
), stored AS (
    INSERT INTO stream_state AS s (group_id, step, "partition", key, value, updated_at)
    SELECT group_id, step, "partition", key, val, now() FROM latest WHERE val IS NOT NULL
    ON CONFLICT (group_id, "partition", step, key) DO UPDATE SET
        value = excluded.value,
        updated_at = excluded.updated_at
)
DELETE FROM stream_state AS s
USING latest AS c
WHERE c.val IS NULL AND s.group_id = c.group_id AND s."partition" = c."partition"
  AND s.step = c.step AND s.key = c.key
"""


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FOLD_ALL)
    op.drop_table("stream_state_log")
