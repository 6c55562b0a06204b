"""The jobs this installation runs, by name: how each is built from a wired `Pipeline`, the
codec of each of its source topics, and what happens to the events its sinks report.

`pipeline-worker <name>`, `pipeline replay <name>`, `pipeline jobs` and the demo all look
jobs up here; adding a domain is one entry (and its `pipeline.jobs` module).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pipeline.adapters.avro import aggregate_codec, shop_event_codec
from pipeline.adapters.connect.debezium import SENSOR_METADATA
from pipeline.application.kafka_authority import RowEncoder, sink_topics
from pipeline.application.ports import Codec, TableCodec
from pipeline.domain.shop_analytics import ConversionRule
from pipeline.domain.windows import WindowAggregate
from pipeline.entrypoints.settings import Settings
from pipeline.jobs.sensor_aggregates import SensorAggregatesConfig, sensor_aggregates_job
from pipeline.jobs.sensors import SensorJobConfig, sensor_job
from pipeline.jobs.shop import ShopJobConfig, shop_job
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

    def authority(self, settings: Settings) -> str:
        """What commits the job's batches: `kafka` (a transaction) when its sinks are
        topics, else `database`."""
        return "kafka" if sink_topics(self.build(settings)) else "database"


def _sensor_job(settings: Settings) -> Job:
    return sensor_job(
        SensorJobConfig(
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
            # The outbox holds them; the relay publishes whatever is unpublished.
            relay.raised(job, events)
            await relay.relay()

        return on_events

    return on_events_of


JOBS: dict[str, JobEntry] = {
    "sensors": JobEntry(
        name="sensors",
        summary="IoT readings → readings, threshold alerts, one-minute statistics",
        build=_sensor_job,
        codecs=lambda p: {p.settings.topics.sensor_readings: p.reading_codec},
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
