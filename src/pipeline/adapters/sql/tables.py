"""The relational schema: the sensor projection and the stream engine's state, as SQLAlchemy
Core tables.

The Alembic migrations in `migrations/versions` create these tables with explicit DDL; this
module is what the store's queries are written against. A test compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as a tz-aware UTC datetime.

    PostgreSQL stores `timestamptz`; SQLite has no timestamp type, so the value is stored as
    naive UTC text in one fixed format, which keeps string comparison equal to time order."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a raw SQLite value that bypassed the DateTime processor
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


UPDATED_IN_PLACE = 70
"""The PostgreSQL fillfactor of tables whose rows every batch rewrites (migration 0004): the
free space lets an update stay on its page without touching the indexes (HOT)."""


JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSON: `jsonb` on PostgreSQL, text on SQLite."""

BYTEA_ARRAY = sa.LargeBinary().with_variant(postgresql.ARRAY(sa.LargeBinary()), "postgresql")
"""`bytea[]` on PostgreSQL; a blob on SQLite, which has no arrays (and never writes one)."""


def _now() -> sa.sql.elements.ColumnElement[datetime]:
    # CURRENT_TIMESTAMP exists on every backend (now() does not exist on SQLite).
    return sa.func.current_timestamp()


readings = sa.Table(
    "readings",
    metadata,
    sa.Column("sensor_id", sa.Text, primary_key=True),
    sa.Column("time", UtcDateTime, primary_key=True),
    sa.Column("sensor_type", sa.Text, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("battery_level", sa.Double, nullable=True),
    sa.Column("signal_strength", sa.Double, nullable=True),
    sa.Column("source_topic", sa.Text, nullable=False),
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("source_offset", sa.BigInteger, nullable=False),
    sa.Column("ingested_at", UtcDateTime, nullable=False, server_default=_now()),
    # Newest-first queries, with or without a sensor type filter. A (sensor_type, time) index
    # cost a third of the insert throughput for three distinct types; the PK serves per-sensor
    # queries.
    sa.Index("ix_readings_time", sa.text("time DESC")),
)

reading_aggregates_1m = sa.Table(
    "reading_aggregates_1m",
    metadata,
    sa.Column("sensor_id", sa.Text, primary_key=True),
    sa.Column("window_start", UtcDateTime, primary_key=True),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("sensor_type", sa.Text, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("min", sa.Double, nullable=False),
    sa.Column("max", sa.Double, nullable=False),
    sa.Column("mean", sa.Double, nullable=False),
    sa.Column("stddev", sa.Double, nullable=False),
    sa.Column("m2", sa.Double, nullable=False, server_default=sa.text("0")),
    # Sum of squared deviations from the mean: with count and mean it lets a batch's new
    # readings be merged into a window without reading the window's older rows again.
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=_now()),
    # Statistics over a time window read its whole minutes from here, by window start.
    sa.Index("ix_reading_aggregates_1m_window_start", "window_start"),
    postgresql_with={"fillfactor": UPDATED_IN_PLACE},
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.Uuid, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("time", UtcDateTime, nullable=False),
    sa.Column("sensor_type", sa.Text, nullable=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("threshold", sa.Double, nullable=True),
    sa.Column("domain", sa.Text, nullable=False, server_default=sa.text("'sensors'")),
    sa.Column("score", sa.Double, nullable=True),
    # Which rules fired (a JSON list) and a model's scored features (a JSON object).
    sa.Column("reasons", JSON, nullable=False, server_default=sa.text("'[]'")),
    sa.Column("model_version", sa.Text, nullable=True),
    sa.Column("features", JSON, nullable=False, server_default=sa.text("'{}'")),
    sa.Column("created_at", UtcDateTime, nullable=False, server_default=_now()),
    # The outbox: set once the alert is on the alerts topic.
    sa.Column("published_at", UtcDateTime, nullable=True),
    sa.Column("acknowledged_at", UtcDateTime, nullable=True),
    sa.Index("ix_alerts_time", "time"),
    sa.Index("ix_alerts_source_time", "source", "time"),
    sa.Index("ix_alerts_domain_time", "domain", "time"),
    sa.Index(
        "ix_alerts_unpublished",
        "time",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
)

consumer_offsets = sa.Table(
    "consumer_offsets",
    metadata,
    sa.Column("group_id", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=_now()),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    # The natural key: where the record was read. Storing a batch again stores nothing twice.
    sa.Column("source_topic", sa.Text, primary_key=True),
    sa.Column("source_partition", sa.Integer, primary_key=True),
    sa.Column("source_offset", sa.BigInteger, primary_key=True),
    sa.Column("record_key", sa.LargeBinary, nullable=True),
    sa.Column("record_value", sa.LargeBinary, nullable=True),
    sa.Column("record_timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("error_class", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("stack_trace", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_failed_at", UtcDateTime, nullable=False),
    sa.Column("last_failed_at", UtcDateTime, nullable=False),
    sa.Column("worker_id", sa.Text, nullable=False),
    sa.Column("group_id", sa.Text, nullable=False),
    sa.Column("stored_at", UtcDateTime, nullable=False, server_default=_now()),
    sa.Index("ix_dead_letters_error_class", "error_class"),
    sa.Index("ix_dead_letters_last_failed_at", "last_failed_at"),
)

stream_state = sa.Table(
    "stream_state",
    metadata,
    # One entry of one stateful step's keyed state in one source partition of a job's group;
    # key and value are the engine's serialized bytes. Written with the batch's offsets.
    sa.Column("group_id", sa.Text, nullable=False),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("key", sa.LargeBinary, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=_now()),
    # Partition before step: a task restores its assigned partitions' state, every step at
    # once, as one range of the key.
    sa.PrimaryKeyConstraint("group_id", "partition", "step", "key"),
    postgresql_with={"fillfactor": UPDATED_IN_PLACE},
)

stream_state_log = sa.Table(
    "stream_state_log",
    metadata,
    # PostgreSQL: the state changes of one batch in one partition and step, appended with the
    # batch's offsets and folded into `stream_state` every few batches; keys[i] was set to
    # vals[i] (null: deleted). `seq` orders the rows of a partition.
    sa.Column("group_id", sa.Text, nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("keys", BYTEA_ARRAY, nullable=False),
    sa.Column("vals", BYTEA_ARRAY, nullable=False),
    sa.PrimaryKeyConstraint("group_id", "partition", "seq"),
)

sensor_metadata = sa.Table(
    "sensor_metadata",
    metadata,
    # Edited by operators; streamed by Debezium into the compacted topic of the same name.
    sa.Column("sensor_id", sa.Text, primary_key=True),
    sa.Column("location", sa.Text, nullable=True),
    sa.Column("low", sa.Float, nullable=True),
    sa.Column("high", sa.Float, nullable=True),
    sa.Column("critical_low", sa.Float, nullable=True),
    sa.Column("critical_high", sa.Float, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=_now()),
)

# ---------------------------------------------------------------------- the shop job
# Window results are per source partition (see `pipeline.jobs.shop`): the partition is part
# of their natural key, and the queries add the partitions up. Each row is written once, when
# its window closes; a repeated write replaces it with the same values.
MONEY = sa.Numeric(18, 2)

shop_sessions = sa.Table(
    "shop_sessions",
    metadata,
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("started_at", UtcDateTime, primary_key=True),
    sa.Column("ended_at", UtcDateTime, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("orders", sa.Integer, nullable=False),
    sa.Column("revenue", MONEY, nullable=False),
    sa.Column("currency", sa.Text, nullable=True),
    # The API lists the sessions that ended in a time range, newest first.
    sa.Index("ix_shop_sessions_ended_at", "ended_at"),
)

shop_funnel_5m = sa.Table(
    "shop_funnel_5m",
    metadata,
    sa.Column("window_start", UtcDateTime, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("searches", sa.BigInteger, nullable=False),
    sa.Column("views", sa.BigInteger, nullable=False),
    sa.Column("carts", sa.BigInteger, nullable=False),
    sa.Column("purchases", sa.BigInteger, nullable=False),
)

shop_revenue_1m = sa.Table(
    "shop_revenue_1m",
    metadata,
    sa.Column("minute", UtcDateTime, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("revenue", MONEY, nullable=False),
    sa.Column("orders", sa.BigInteger, nullable=False),
)

shop_top_products_1h = sa.Table(
    "shop_top_products_1h",
    metadata,
    sa.Column("window_start", UtcDateTime, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("product_id", sa.Text, nullable=False),
    sa.Column("revenue_eur", MONEY, nullable=False),
    sa.Column("units", sa.BigInteger, nullable=False),
)

# -- payments (the payments job's tables, migration 0008) ---------------------------------

flagged_transactions = sa.Table(
    "flagged_transactions",
    metadata,
    # One row per transaction a fraud rule fired on; written once (a replay writes the same).
    sa.Column("transaction_id", sa.Text, primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("amount", sa.Numeric(20, 4), nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("merchant", sa.Text, nullable=False),
    sa.Column("country", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("time", UtcDateTime, nullable=False),
    sa.Column("reasons", JSON, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False, server_default=_now()),
    # The feed pages newest first, overall and per account.
    sa.Index("ix_flagged_transactions_time", "time", "transaction_id"),
    sa.Index("ix_flagged_transactions_account_id_time", "account_id", "time"),
)

fraud_flag_reasons = sa.Table(
    "fraud_flag_reasons",
    metadata,
    # One row per rule that flagged a transaction: per-rule counts and the rule filter are
    # plain GROUP BY and joins, on either dialect.
    sa.Column("transaction_id", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("time", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("transaction_id", "rule"),
    sa.Index("ix_fraud_flag_reasons_rule_time", "rule", "time"),
)

transaction_outcomes = sa.Table(
    "transaction_outcomes",
    metadata,
    # A transaction with each of its outcomes (or 'none' when none came within the join's
    # interval): the interval join's results, written once.
    sa.Column("transaction_id", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("amount", sa.Numeric(20, 4), nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("transaction_time", UtcDateTime, nullable=False),
    sa.Column("outcome_time", UtcDateTime, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("transaction_id", "outcome"),
)

anomaly_models = sa.Table(
    "anomaly_models",
    metadata,
    # The database model store: each scoring model's artifact and metadata (issue 11), per
    # model family (`sensors`, `payments`: migration 0011).
    sa.Column("namespace", sa.Text, primary_key=True, server_default="sensors"),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("trained_at", UtcDateTime, nullable=False),
    sa.Column("sample_size", sa.Integer, nullable=False),
    sa.Column("features", JSON, nullable=False),
    sa.Column("contamination", sa.Double, nullable=False),
    sa.Column("evaluation", JSON, nullable=False),
    sa.Column("accepted", sa.Boolean, nullable=False),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("artifact", sa.LargeBinary, nullable=False),
    # Set when an operator or retraining promotes it: the newest promoted one is current.
    sa.Column("promoted_at", UtcDateTime, nullable=True),
)

# ---- social (jobs `social` and `post-engagement`; migration 0010) -------------------------

social_trending = sa.Table(
    "social_trending",
    metadata,
    # The top k tags of each hop of the 15-minute window, per partition of the hashtags
    # topic (a tag lives in one): the top k of a hop is the top k of its rows. Final.
    sa.Column("window_start", UtcDateTime, primary_key=True),
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
)

social_tag_history = sa.Table(
    "social_tag_history",
    metadata,
    # Every hop of every tag used in it, with the burst score against the tag's baseline.
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("window_start", UtcDateTime, primary_key=True),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("baseline", sa.Double, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("bursting", sa.Boolean, nullable=False),
    sa.Column("burst_start", sa.Boolean, nullable=False),
    # "Trending now" ranks the latest hop's tags by score.
    sa.Index("ix_social_tag_history_window_start", "window_start"),
)

social_post_engagement = sa.Table(
    "social_post_engagement",
    metadata,
    # Likes and shares of a post within the hour after it; updated while they arrive.
    sa.Column("post_id", sa.Text, primary_key=True),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("posted_at", UtcDateTime, nullable=False),
    sa.Column("likes", sa.BigInteger, nullable=False),
    sa.Column("shares", sa.BigInteger, nullable=False),
    sa.Column("engagements", sa.BigInteger, nullable=False),
    sa.Column("last_engaged_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=_now()),
    # Top posts of a period; an author's posts (engagement per author sums them).
    sa.Index("ix_social_post_engagement_posted_at", "posted_at"),
    sa.Index("ix_social_post_engagement_author", "author"),
    postgresql_with={"fillfactor": UPDATED_IN_PLACE},
)
