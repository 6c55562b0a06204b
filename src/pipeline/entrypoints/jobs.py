"""The jobs this installation runs, by name: how each is built from a wired `Pipeline`, the
codec of each of its source topics, and what happens to the events its sinks report.

`pipeline-worker <name>`, `pipeline replay <name>`, `pipeline jobs` and the demo all look
jobs up here; adding a domain is one entry (and its `pipeline.jobs` module).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pipeline.adapters.avro import (
    account_profile_codec,
    aggregate_codec,
    engagement_codec,
    payment_outcome_codec,
    post_codec,
    reading_row_codec,
    shop_event_codec,
    transaction_codec,
)
from pipeline.adapters.avro.social import hashtag_use_codec
from pipeline.adapters.connect.debezium import SENSOR_METADATA
from pipeline.application.errors import ConfigurationError
from pipeline.application.kafka_authority import RowEncoder, sink_topics
from pipeline.application.ports import Codec, TableCodec
from pipeline.application.scoring import LiveModel
from pipeline.domain.fraud import FraudRules
from pipeline.domain.shop_analytics import ConversionRule
from pipeline.domain.social import BurstRule, HashtagUse
from pipeline.domain.windows import WindowAggregate
from pipeline.entrypoints.settings import Settings
from pipeline.jobs.payments import PaymentsJobConfig, payments_job
from pipeline.jobs.sensor_aggregates import SensorAggregatesConfig, sensor_aggregates_job
from pipeline.jobs.sensors import SensorJobConfig, sensor_job
from pipeline.jobs.shop import ShopJobConfig, shop_job
from pipeline.jobs.social import (
    PostEngagementConfig,
    SocialJobConfig,
    SocialTagsConfig,
    post_engagement_job,
    social_job,
    social_tags_job,
)
from pipeline.streams import Job

if TYPE_CHECKING:
    from pipeline.entrypoints.bootstrap import Pipeline


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEntry:
    """One job of the registry."""

    name: str
    summary: str
    build: Callable[[Settings], Job]
    codecs: Callable[[Pipeline], Mapping[str, Codec[Any]]]
    on_events: Callable[[Pipeline], Callable[[Sequence[object]], Awaitable[None]]] | None = None
    encoders: Callable[[Pipeline], Mapping[str, RowEncoder]] | None = None
    """For a job whose sinks are topics: how each sink's rows become records."""
    guarantee: str
    """How the job's outputs survive failures (shown by `pipeline jobs`)."""
    tables: Callable[[Pipeline], Mapping[str, TableCodec[Any, Any]]] | None = None
    """For a job that joins global tables: how each one's topic is read."""
    scored: Callable[[Settings, LiveModel], Job] | None = None
    """The job scoring its records with a live model of family `model_namespace`."""
    model_namespace: str | None = None
    """The model family that scores the job's records (`pipeline.entrypoints.models`)."""

    def authority(self, settings: Settings) -> str:
        """What commits the job's batches: `kafka` (a transaction) when its sinks are
        topics, else `database`."""
        return "kafka" if sink_topics(self.build(settings)) else "database"


def _sensor_job(settings: Settings, scoring: LiveModel | None = None) -> Job:
    return sensor_job(
        SensorJobConfig(
            scoring=scoring,
            topic=settings.topics.sensor_readings,
            thresholds=settings.domain_thresholds(),
            max_clock_skew=timedelta(seconds=settings.worker.max_clock_skew_seconds),
            window_grace=timedelta(seconds=settings.worker.sensor_window_grace_s),
            idle_timeout=timedelta(seconds=settings.worker.idle_timeout_s),
            metadata_topic=settings.topics.sensor_metadata,
            timeseries=settings.timeseries.url is not None,
        )
    )


def _sensor_aggregates_job(settings: Settings) -> Job:
    return sensor_aggregates_job(
        SensorAggregatesConfig(
            topic=settings.topics.sensor_readings,
            output_topic=settings.topics.sensor_aggregates,
            max_clock_skew=timedelta(seconds=settings.worker.max_clock_skew_seconds),
            window_grace=timedelta(seconds=settings.worker.sensor_aggregates_grace_s),
            idle_timeout=timedelta(seconds=settings.worker.idle_timeout_s),
        )
    )


def _shop_job(settings: Settings) -> Job:
    shop = settings.shop
    return shop_job(
        ShopJobConfig(
            topic=settings.topics.ecommerce_events,
            window_grace=timedelta(seconds=shop.window_grace_s),
            max_clock_skew=timedelta(seconds=settings.worker.max_clock_skew_seconds),
            conversion=ConversionRule(
                recent_windows=shop.conversion_recent_windows,
                drop_ratio=shop.conversion_drop_ratio,
                min_views=shop.conversion_min_views,
                min_recent_purchases=shop.conversion_min_recent_purchases,
            ),
            idle_timeout=timedelta(seconds=settings.worker.idle_timeout_s),
        )
    )


def _payments_job(settings: Settings, scoring: LiveModel | None = None) -> Job:
    return payments_job(replace(payments_config(settings), scoring=scoring))


def payments_config(settings: Settings) -> PaymentsJobConfig:
    """The payments job's configuration from the settings (`PIPELINE_PAYMENTS__…`)."""
    p = settings.payments
    try:
        rules = FraudRules(
            lookback=timedelta(seconds=p.lookback_s),
            velocity_window=timedelta(seconds=p.velocity_window_s),
            velocity_count=p.velocity_count,
            card_testing_window=timedelta(seconds=p.card_testing_window_s),
            card_testing_count=p.card_testing_count,
            tiny_fraction=p.tiny_fraction,
            max_speed_kmh=p.max_speed_kmh,
            amount_factor=p.amount_factor,
            amount_sigmas=p.amount_sigmas,
            night_hours=(p.night_start_hour, p.night_end_hour),
        )
    except ValueError as error:
        raise ConfigurationError(f"PIPELINE_PAYMENTS__…: {error}") from None
    return PaymentsJobConfig(
        transactions_topic=settings.topics.transactions,
        accounts_topic=settings.topics.accounts,
        outcomes_topic=settings.topics.payment_outcomes,
        rules=rules,
        grace=timedelta(seconds=p.grace_s),
        outcome_window=timedelta(seconds=p.outcome_window_s),
        idle_timeout=timedelta(seconds=settings.worker.idle_timeout_s),
    )


def _payments_codecs(pipeline: Pipeline) -> Mapping[str, Codec[Any]]:
    topics, registry = pipeline.settings.topics, pipeline.registry
    return {
        topics.transactions: transaction_codec(registry, topics.transactions),
        topics.accounts: account_profile_codec(registry, topics.accounts),
        topics.payment_outcomes: payment_outcome_codec(registry, topics.payment_outcomes),
    }


def _aggregate_encoders(pipeline: Pipeline) -> Mapping[str, RowEncoder]:
    codec = aggregate_codec(pipeline.registry, pipeline.settings.topics.sensor_aggregates)

    async def encode(row: WindowAggregate) -> tuple[bytes | None, bytes | None]:
        # Keyed like the readings: a sensor's aggregates land in its readings' partition.
        return row.sensor_id.encode(), await codec.encode(row)

    return {"aggregates": encode}


def _relay_alerts(
    job: str,
) -> Callable[[Pipeline], Callable[[Sequence[object]], Awaitable[None]]]:
    """What job `job` does with the events its sinks report: count its new alerts (under
    its name) and relay the outbox."""

    def on_events_of(pipeline: Pipeline) -> Callable[[Sequence[object]], Awaitable[None]]:
        relay = pipeline.alert_relay()

        async def on_events(events: Sequence[object]) -> None:
            # The outbox holds them: the relay publishes them as stored, then whatever else
            # is unpublished.
            relay.raised(job, events)
            await relay.relay(events)

        return on_events

    return on_events_of


# ---- social ---------------------------------------------------------------------------


def _social_tags_job(settings: Settings) -> Job:
    return social_tags_job(
        SocialTagsConfig(
            posts_topic=settings.topics.social_posts,
            hashtags_topic=settings.topics.social_hashtags,
            idle_timeout=timedelta(seconds=settings.worker.idle_timeout_s),
        )
    )


def _social_job(settings: Settings) -> Job:
    social = settings.social
    return social_job(
        SocialJobConfig(
            hashtags_topic=settings.topics.social_hashtags,
            burst=BurstRule(
                baseline=timedelta(minutes=social.burst_baseline_minutes),
                cooldown=timedelta(minutes=social.burst_cooldown_minutes),
                threshold=social.burst_threshold,
                min_count=social.burst_min_count,
                min_ratio=social.burst_min_ratio,
            ),
            top_k=social.top_k,
            window_grace=timedelta(seconds=social.window_grace_s),
            idle_timeout=timedelta(seconds=settings.worker.idle_timeout_s),
        )
    )


def _post_engagement_job(settings: Settings) -> Job:
    return post_engagement_job(
        PostEngagementConfig(
            posts_topic=settings.topics.social_posts,
            engagement_topic=settings.topics.social_engagement,
            within=timedelta(seconds=settings.social.engagement_within_s),
            join_grace=timedelta(seconds=settings.social.join_grace_s),
            idle_timeout=timedelta(seconds=settings.worker.idle_timeout_s),
        )
    )


def _hashtag_encoders(pipeline: Pipeline) -> Mapping[str, RowEncoder]:
    codec = hashtag_use_codec(pipeline.registry, pipeline.settings.topics.social_hashtags)

    async def encode(use: HashtagUse) -> tuple[bytes | None, bytes | None]:
        # Keyed by the tag: all of a tag's uses meet in one partition.
        return use.tag.encode(), await codec.encode(use)

    return {"social_hashtags": encode}


def _relay_social_alerts(pipeline: Pipeline) -> Callable[[Sequence[object]], Awaitable[None]]:
    relay = pipeline.alert_relay()

    async def on_events(events: Sequence[object]) -> None:
        relay.raised("social", events)
        await relay.relay(events)

    return on_events


SOCIAL_JOBS = {
    "social-tags": JobEntry(
        name="social-tags",
        summary="social posts → one record per hashtag, keyed by tag (social-hashtags)",
        build=_social_tags_job,
        codecs=lambda p: {
            p.settings.topics.social_posts: post_codec(p.registry, p.settings.topics.social_posts)
        },
        encoders=_hashtag_encoders,
        guarantee=(
            "Kafka transaction: hashtag uses, dead letters and offsets commit together; "
            "read_committed consumers see each use exactly once"
        ),
    ),
    "social": JobEntry(
        name="social",
        summary="hashtag uses → trending tags per hop, tag history, trending alerts",
        build=_social_job,
        codecs=lambda p: {
            p.settings.topics.social_hashtags: hashtag_use_codec(
                p.registry, p.settings.topics.social_hashtags
            )
        },
        on_events=_relay_social_alerts,
        guarantee=(
            "database transaction: rows, window state and offsets commit together; "
            "alerts leave through an outbox (at least once, deduplicated by alert id)"
        ),
    ),
    "post-engagement": JobEntry(
        name="post-engagement",
        summary="social posts ⋈ likes and shares within the hour → engagement per post",
        build=_post_engagement_job,
        codecs=lambda p: {
            p.settings.topics.social_posts: post_codec(p.registry, p.settings.topics.social_posts),
            p.settings.topics.social_engagement: engagement_codec(
                p.registry, p.settings.topics.social_engagement
            ),
        },
        guarantee="database transaction: rows, join and window state and offsets commit together",
    ),
}

JOBS: dict[str, JobEntry] = {
    "sensors": JobEntry(
        name="sensors",
        summary="IoT readings → readings, threshold alerts, one-minute statistics",
        build=_sensor_job,
        scored=_sensor_job,
        model_namespace="sensors",
        codecs=lambda p: {
            p.settings.topics.sensor_readings: reading_row_codec(
                p.registry,
                p.settings.topics.sensor_readings,
                native=p.settings.worker.native_decode,
            )
        },
        on_events=_relay_alerts("sensors"),
        tables=lambda p: {p.settings.topics.sensor_metadata: SENSOR_METADATA},
        guarantee=(
            "database transaction: rows, window state and offsets commit together; "
            "alerts leave through an outbox (at least once, deduplicated by alert id); "
            "time-series points, when configured, are written before the commit "
            "(idempotent: once each)"
        ),
    ),
    "sensor-aggregates": JobEntry(
        name="sensor-aggregates",
        summary="IoT readings → final one-minute statistics per sensor, on a topic",
        build=_sensor_aggregates_job,
        codecs=lambda p: {p.settings.topics.sensor_readings: p.reading_codec},
        encoders=_aggregate_encoders,
        guarantee=(
            "Kafka transaction: aggregates, window state (changelog) and offsets commit "
            "together; read_committed consumers see each sensor-minute exactly once"
        ),
    ),
    "shop": JobEntry(
        name="shop",
        summary="shop events → sessions, funnel, revenue, top products, conversion alerts",
        build=_shop_job,
        codecs=lambda p: {
            p.settings.topics.ecommerce_events: shop_event_codec(
                p.registry, p.settings.topics.ecommerce_events
            )
        },
        on_events=_relay_alerts("shop"),
        guarantee=(
            "database transaction: window rows, window state and offsets commit together; "
            "alerts leave through an outbox (at least once, deduplicated by alert id)"
        ),
    ),
    "payments": JobEntry(
        name="payments",
        summary="card transactions → fraud flags with reasons and score, alerts, outcomes",
        build=_payments_job,
        scored=_payments_job,
        model_namespace="payments",
        codecs=_payments_codecs,
        on_events=_relay_alerts("payments"),
        guarantee=(
            "database transaction: flagged transactions, outcomes, window and join state and "
            "offsets commit together; alerts leave through an outbox (at least once, "
            "deduplicated by alert id)"
        ),
    ),
    **SOCIAL_JOBS,
}


def describe(entry: JobEntry, job: Job) -> dict[str, object]:
    """What `pipeline jobs` shows of a job: sources, tables, steps, state, sinks, authority (what
    commits a batch: a database or a Kafka transaction), guarantee."""
    plan = job.plan()
    return {
        "job": entry.name,
        "summary": entry.summary,
        "sources": {topic: spec.value.__name__ for topic, spec in job.sources.items()},
        "tables": {topic: spec.value.__name__ for topic, spec in job.tables.items()}
        | {topic: f"{spec.value.__name__}, global" for topic, spec in job.global_tables.items()},
        "steps": [f"{node.id} ({node.kind})" for node in plan.nodes if node.kind != "source"],
        "state": list(plan.stateful_steps),
        "sinks": {
            name: sink.description or sink.value.__name__ for name, sink in job.sinks.items()
        },
        "authority": "kafka" if sink_topics(job) is not None else "database",
        "guarantee": entry.guarantee,
    }
