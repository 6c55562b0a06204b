"""The composition root: the only place that chooses adapters.

A dependency-injector `Container` wires settings → adapters and owns the lifecycles of what
it opens: `shutdown_resources` flushes and closes the event log, waits for the checkpoint
store's background work, then disposes the database engine. `bootstrap(settings,
**overrides)` builds one and hands the entrypoints a `Pipeline`: real adapters where an
endpoint is configured, embedded ones otherwise; any piece can be overridden (tests pass
in-memory fakes, the demo shares one in-memory log between producer and worker). Jobs and
handlers never import the container: they are given what they need (`Pipeline.job_run`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from dependency_injector import containers, providers

from pipeline.adapters.avro import alert_codec, reading_codec
from pipeline.adapters.clock import SystemClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.adapters.memory.sensor_sinks import memory_sensor_sinks
from pipeline.adapters.memory.sensor_store import InMemorySensorStore
from pipeline.adapters.memory.shop_store import InMemoryShopQueries
from pipeline.application.alerts import AlertRelay
from pipeline.application.errors import ConfigurationError
from pipeline.application.kafka_authority import TopicSink, sink_topics
from pipeline.application.ports import (
    Clock,
    Codec,
    DeadLetterStore,
    EventLog,
    SchemaRegistry,
    SensorStore,
    ShopQueries,
    TopicSpec,
)
from pipeline.application.ports.checkpoint import CheckpointStore
from pipeline.application.ports.payments import PaymentQueries
from pipeline.application.ports.social import SocialQueries
from pipeline.application.ports.telemetry import Telemetry
from pipeline.application.ports.timeseries import TimeSeries
from pipeline.application.ports.tracing import Tracing
from pipeline.application.runtime.retry_policy import RetryPolicy
from pipeline.application.runtime.runner import JobRun
from pipeline.application.scoring import LiveModel
from pipeline.application.telemetry import NullTelemetry
from pipeline.application.timeseries_sink import TimeSeriesCheckpoint, timeseries_sinks
from pipeline.application.topic_names import derived_topic_specs
from pipeline.application.topic_policy import TopicKind, topic_config
from pipeline.application.tracing import NullTracing
from pipeline.domain import Alert, Reading
from pipeline.entrypoints.jobs import JOBS, JobEntry
from pipeline.entrypoints.settings import Settings


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the application owns, with its partition count and its configuration by
    kind (retention, compaction: see `pipeline.application.topic_policy`): the event and
    table topics, then the dead-letter, late and retry topics of every topic a registered
    job consumes (`consumed_topics`)."""
    topics = settings.topics
    events = topic_config(TopicKind.EVENTS, retention_hours=topics.retention_hours)
    changelog = topic_config(TopicKind.CHANGELOG, retention_hours=topics.retention_hours)
    specs = [
        TopicSpec(
            name=topics.sensor_readings, partitions=topics.sensor_readings_partitions, config=events
        ),
        # Keyed by sensor id like the readings, so partitioned like them.
        TopicSpec(
            name=topics.sensor_aggregates,
            partitions=topics.sensor_readings_partitions,
            config=events,
        ),
    ]
    specs += [
        TopicSpec(name=name, partitions=topics.default_partitions, config=events)
        for name in (
            topics.ecommerce_events,
            topics.transactions,
            topics.payment_outcomes,
            topics.social_posts,
            topics.social_engagement,
            topics.system_alerts,
            # Keyed by tag (the social-tags job's output), for the social job's counts.
            topics.social_hashtags,
        )
    ]
    # Keyed by account id like the transactions, and as many partitions, so that a job
    # joining them finds an account's profile in the partition of its payments.
    specs += [
        TopicSpec(name=name, partitions=topics.default_partitions, config=changelog)
        for name in (topics.accounts, topics.sensor_metadata)
    ]
    # Partitioned like their source (a key keeps its partition). A job under Kafka
    # authority needs them before its first transaction.
    owned = {spec.name: spec for spec in specs}
    levels = len(settings.retry.topic_delays_s)
    for topic, jobs in consumed_topics(settings).items():
        source = owned.get(topic)
        if source is None:
            raise ConfigurationError(
                f"job {', '.join(jobs)} consumes topic {topic!r}, which the application "
                "does not own (add it to `topic_specs`): its dead-letter, late and retry "
                "topics need its partition count"
            )
        specs += derived_topic_specs(source, levels)
    return specs


def consumed_topics(settings: Settings) -> dict[str, list[str]]:
    """The topics the registered jobs read in their consumer groups — their sources and
    partitioned tables, not global tables (read whole, outside the group, never
    dead-lettered) — each with the jobs reading it, in registry order."""
    consumed: dict[str, list[str]] = {}
    for name, entry in JOBS.items():
        job = entry.build(settings)
        for topic in (*job.sources, *job.tables):
            consumed.setdefault(topic, []).append(name)
    return consumed


@dataclass(kw_only=True)
class Pipeline:
    """Wired services shared by the entrypoints of one process."""

    settings: Settings
    log: EventLog
    registry: SchemaRegistry
    store: SensorStore
    """The sensor projection's queries (API, CLI)."""
    checkpoint: CheckpointStore
    """Where jobs under database authority commit their batches (same database)."""
    shop: ShopQueries
    """The shop job's tables as the API reads them (same database)."""
    clock: Clock
    reading_codec: Codec[Reading]
    alert_codec: Codec[Alert]
    telemetry: Telemetry
    """Where the runtime, the alert relay and the API report (Prometheus, or nothing)."""
    tracing: Tracing
    """Where the runtime and the alert relay open spans (OpenTelemetry, or nothing)."""
    publishing_log: EventLog
    """The log producers and the alert relay publish through: `log`, whose records carry
    their trace context when tracing is on."""
    container: Container = field(repr=False)
    timeseries: TimeSeries | None = None
    """Where jobs' time-series sinks write (`PIPELINE_TIMESERIES__URL`), or none."""
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    """Names this process in dead-letter headers."""
    _closed: bool = field(default=False, repr=False)

    def topic_specs(self) -> list[TopicSpec]:
        """Every topic the application owns (see `topic_specs`)."""
        return topic_specs(self.settings)

    async def ensure_topics(self) -> None:
        """Create the application's topics that do not exist yet."""
        await self.log.ensure_topics(self.topic_specs())

    def group_id(self, worker: str) -> str:
        """The consumer group of a job, e.g. `pipeline-sensors`."""
        return f"{self.settings.worker.group_id_prefix}-{worker}"

    def retry_policy(self) -> RetryPolicy:
        """In-place retries of a batch failing transiently, from the `retry` settings."""
        retry = self.settings.retry
        return RetryPolicy(
            initial=retry.initial_backoff_s,
            maximum=retry.max_backoff_s,
            attempts=retry.in_place_attempts,
        )

    def job(self, name: str) -> JobEntry:
        """The registered job `name`; ConfigurationError naming the known ones otherwise."""
        entry = JOBS.get(name)
        if entry is None:
            raise ConfigurationError(f"no job {name!r}; known jobs: {', '.join(sorted(JOBS))}")
        return entry

    def job_run(
        self, name: str, *, group_id: str | None = None, scoring: LiveModel | None = None
    ) -> JobRun:
        """What `run_job` needs to run job `name` as consumer group `group_id`: under Kafka
        authority when its sinks are topics, as member `PIPELINE_WORKER__INSTANCE_ID` (else
        this process's `worker_id`) of the group; scoring with `scoring` if given."""
        entry = self.job(name)
        worker = self.settings.worker
        if scoring is None:
            job = entry.build(self.settings)
        elif entry.scored is not None:
            job = entry.scored(self.settings, scoring)
        else:
            raise ConfigurationError(f"job {name!r} does not score with a model")
        topics = sink_topics(job)
        topic_sinks = None
        if topics is not None:
            encoders = entry.encoders(self) if entry.encoders is not None else {}
            missing = sorted(set(topics) - set(encoders))
            if missing:
                raise ConfigurationError(f"job {name!r}: no encoder for topic sink(s) {missing}")
            topic_sinks = {sink: TopicSink(topic, encoders[sink]) for sink, topic in topics.items()}
        store = self.checkpoint
        series = timeseries_sinks(job)
        if series:
            if self.timeseries is None:
                raise ConfigurationError(
                    f"job {name!r} has time-series sinks {series}; set PIPELINE_TIMESERIES__URL"
                )
            store = TimeSeriesCheckpoint(store, self.timeseries, series)
        return JobRun(
            job=job,
            group_id=group_id or self.group_id(name),
            log=self.log,
            store=store,
            codecs=entry.codecs(self),
            clock=self.clock,
            worker_id=self.worker_id,
            batch_size=worker.batch_size,
            batch_timeout=worker.batch_timeout,
            retry=self.retry_policy(),
            retry_delays_s=self.settings.retry.topic_delays_s,
            telemetry=self.telemetry,
            tracing=self.tracing,
            sample_interval_s=self.settings.metrics.sample_interval_s,
            topic_sinks=topic_sinks,
            member_id=worker.instance_id or self.worker_id,
            table_codecs=entry.tables(self) if entry.tables is not None else {},
        )

    def dead_letter_store(self) -> DeadLetterStore:
        """Where the dead letters are stored: the sensor store's `dead_letters`."""
        found = getattr(self.store, "dead_letters", None)
        if not isinstance(found, DeadLetterStore):
            raise ConfigurationError(f"{type(self.store).__name__} keeps no dead letters")
        return found

    def payment_queries(self) -> PaymentQueries:
        """The payments job's tables, read on the sensor store's database (or in memory)."""
        if isinstance(self.store, InMemorySensorStore):
            from pipeline.adapters.memory.payment_queries import (  # noqa: PLC0415
                InMemoryPaymentQueries,
            )

            return InMemoryPaymentQueries(self.store.declared)
        from pipeline.adapters.sql import SqlSensorStore  # noqa: PLC0415
        from pipeline.adapters.sql.payment_queries import SqlPaymentQueries  # noqa: PLC0415

        if isinstance(self.store, SqlSensorStore):
            return SqlPaymentQueries(self.store.engine)
        raise ConfigurationError(f"{type(self.store).__name__} keeps no payments tables")

    def alert_relay(self) -> AlertRelay:
        """The outbox relay publishing stored alerts to the alerts topic."""
        return AlertRelay(
            store=self.store,
            log=self.publishing_log,
            codec=self.alert_codec,
            topic=self.settings.topics.system_alerts,
            telemetry=self.telemetry,
            tracing=self.tracing,
        )

    async def aclose(self) -> None:
        """Flush and close the log, then close the store. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        result = self.container.shutdown_resources()
        if result is not None:
            await result


def _event_log(settings: Settings) -> EventLog:
    kafka = settings.kafka
    if kafka.bootstrap_servers is None:
        return InMemoryEventLog()
    from pipeline.adapters.kafka import KafkaEventLog  # noqa: PLC0415 - only when configured

    return KafkaEventLog(
        bootstrap_servers=kafka.bootstrap_servers,
        client_config=kafka.client_config(),
        client_id=kafka.client_id,
        consumer_config=kafka.consumer_config(),
        replication_factor=kafka.replication_factor,
        min_insync_replicas=kafka.min_insync_replicas,
        connect_timeout=kafka.connect_timeout_s,
        group_instance_id=settings.worker.instance_id,
    )


def _registry(settings: Settings) -> SchemaRegistry:
    registry = settings.registry
    if registry.url is None:
        return InMemorySchemaRegistry()
    from pipeline.adapters.registry import ConfluentSchemaRegistry  # noqa: PLC0415

    auth = registry.basic_auth.get_secret_value() if registry.basic_auth else None
    return ConfluentSchemaRegistry(url=registry.url, basic_auth=auth)


async def _sql_store(settings: Settings, *, migrate: bool, require_schema: bool) -> SensorStore:
    from pipeline.adapters.sql import SqlSensorStore, create_engine  # noqa: PLC0415
    from pipeline.adapters.sql.migrate import require_current, upgrade  # noqa: PLC0415

    url = settings.database.url.get_secret_value()
    if migrate:
        await asyncio.to_thread(upgrade, url)
    database = settings.database
    engine = create_engine(url, pool_size=database.pool_size, max_overflow=database.max_overflow)
    if require_schema and not migrate:
        try:
            # On the store's engine: its first connection, pooled for the first batch.
            await require_current(engine)
        except BaseException:
            await engine.dispose()
            raise
    return SqlSensorStore(engine)


def _checkpoint(store: SensorStore) -> CheckpointStore:
    """The checkpoint store on the same database as the sensor store's queries, with the
    sensor job's sinks bound by name."""
    from pipeline.adapters.sql.declared import DECLARED_SINKS  # noqa: PLC0415

    if isinstance(store, InMemorySensorStore):
        from pipeline.adapters.memory.table_sinks import memory_table_sinks  # noqa: PLC0415

        sinks = memory_sensor_sinks(store.tables) | memory_table_sinks(
            DECLARED_SINKS, store.declared
        )
        return InMemoryCheckpointStore(sinks, dead_letters=store.dead_letters)
    from pipeline.adapters.sql import SqlSensorStore  # noqa: PLC0415
    from pipeline.adapters.sql.checkpoint import sql_checkpoint_store  # noqa: PLC0415
    from pipeline.adapters.sql.postgres_sinks import postgres_sensor_sinks  # noqa: PLC0415
    from pipeline.adapters.sql.sqlite_sinks import sqlite_sensor_sinks  # noqa: PLC0415
    from pipeline.adapters.sql.table_sinks import (  # noqa: PLC0415
        postgres_table_sinks,
        sqlite_table_sinks,
    )

    if isinstance(store, SqlSensorStore):
        return sql_checkpoint_store(
            store.engine,
            postgres=postgres_sensor_sinks() | postgres_table_sinks(DECLARED_SINKS),
            sqlite=sqlite_sensor_sinks() | sqlite_table_sinks(DECLARED_SINKS),
        )
    raise ConfigurationError(f"no checkpoint store for {type(store).__name__}")


def _shop_queries(store: SensorStore) -> ShopQueries:
    """The shop queries on the sensor store's database (in memory: its declared rows)."""
    if isinstance(store, InMemorySensorStore):
        return InMemoryShopQueries(store.declared)
    from pipeline.adapters.sql import SqlSensorStore  # noqa: PLC0415
    from pipeline.adapters.sql.shop_store import SqlShopQueries  # noqa: PLC0415

    if isinstance(store, SqlSensorStore):
        return SqlShopQueries(store.engine)
    raise ConfigurationError(f"no shop queries for {type(store).__name__}")


def social_queries(store: SensorStore) -> SocialQueries:
    """The queries of the social jobs' tables, on the database (or memory) of `store`."""
    if isinstance(store, InMemorySensorStore):
        from pipeline.adapters.memory.social_queries import InMemorySocialQueries  # noqa: PLC0415

        return InMemorySocialQueries(store.declared)
    from pipeline.adapters.sql import SqlSensorStore  # noqa: PLC0415
    from pipeline.adapters.sql.social_queries import SqlSocialQueries  # noqa: PLC0415

    if isinstance(store, SqlSensorStore):
        return SqlSocialQueries(store.engine)
    raise ConfigurationError(f"no social queries for {type(store).__name__}")


def _timeseries(settings: Settings) -> TimeSeries | None:
    series = settings.timeseries
    if series.url is None:
        return None
    from pipeline.adapters.timeseries import InfluxTimeSeries  # noqa: PLC0415

    return InfluxTimeSeries(
        url=series.url,
        token=series.token.get_secret_value(),
        org=series.org,
        bucket=series.bucket,
        batch_size=series.batch_size,
        timeout_s=series.timeout_s,
        retries=series.retries,
    )


async def _owned_timeseries(series: TimeSeries | None) -> AsyncIterator[TimeSeries | None]:
    try:
        yield series
    finally:
        if series is not None:
            await series.close()


def _telemetry(settings: Settings, metrics: bool) -> Telemetry:
    if not metrics and settings.metrics.port is None:
        return NullTelemetry()
    from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry  # noqa: PLC0415

    return PrometheusTelemetry()


def tracing_from(settings: Settings) -> Tracing:
    """The process's tracing: OpenTelemetry exporting to `PIPELINE_TRACING__ENDPOINT`, or
    nothing when it is unset."""
    tracing = settings.tracing
    if tracing.endpoint is None:
        return NullTracing()
    from pipeline.adapters.telemetry.tracing import OtelTracing, tracer_provider  # noqa: PLC0415

    return OtelTracing(
        tracer_provider(
            endpoint=str(tracing.endpoint),
            sample_ratio=tracing.sample_ratio,
            service_name=tracing.service_name,
            instance_id=f"{socket.gethostname()}:{os.getpid()}",
        )
    )


def _owned_tracing(tracing: Tracing) -> Iterator[Tracing]:
    try:
        yield tracing
    finally:
        tracing.close()


def _traced(
    tracing: Tracing, log: EventLog, checkpoint: CheckpointStore, settings: Settings
) -> tuple[EventLog, CheckpointStore]:
    """The log producers publish through and the checkpoint store jobs commit to, traced
    when tracing is on (see `pipeline.adapters.telemetry.tracing`)."""
    if isinstance(tracing, NullTracing):
        return log, checkpoint
    from pipeline.adapters.telemetry.propagation import TracingEventLog  # noqa: PLC0415
    from pipeline.adapters.telemetry.tracing import (  # noqa: PLC0415
        OtelTracing,
        TracedCheckpointStore,
    )

    if not isinstance(tracing, OtelTracing):
        return log, checkpoint
    if isinstance(checkpoint, InMemoryCheckpointStore):
        system = "memory"
    else:
        system = settings.database.url.get_secret_value().split(":", 1)[0].split("+", 1)[0]
    return (
        TracingEventLog(log, tracing.tracer),
        TracedCheckpointStore(checkpoint, tracing.tracer, db_system=system),
    )


async def _owned_log(log: EventLog) -> AsyncIterator[EventLog]:
    try:
        yield log
    finally:
        await log.close()


async def _owned_store(store: SensorStore) -> AsyncIterator[SensorStore]:
    try:
        yield store
    finally:
        await store.close()


async def _owned_checkpoint(
    store: SensorStore, given: CheckpointStore | None = None
) -> AsyncIterator[CheckpointStore]:
    # The store is an argument so that the container closes the checkpoint store first (it
    # may still be writing to the store's database in the background).
    checkpoint = _checkpoint(store) if given is None else given
    try:
        yield checkpoint
    finally:
        await checkpoint.close()


class Container(containers.DeclarativeContainer):
    """The process's object graph: settings → adapters. Resources (the log, the store, the
    checkpoint store on it) are opened by `init_resources` and closed by
    `shutdown_resources`, each before what it depends on."""

    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)
    registry = providers.Singleton(_registry, settings)
    log = providers.Resource(_owned_log, providers.Singleton(_event_log, settings))
    sensor_store = providers.Dependency(instance_of=object)
    """The store bootstrap opened or was given (the `store` resource closes it)."""
    store = providers.Resource(_owned_store, sensor_store)
    checkpoint = providers.Resource(_owned_checkpoint, store)
    shop = providers.Singleton(_shop_queries, store)
    timeseries = providers.Resource(_owned_timeseries, providers.Singleton(_timeseries, settings))
    metrics = providers.Object(False)
    telemetry = providers.Singleton(_telemetry, settings, metrics)
    tracing = providers.Resource(_owned_tracing, providers.Singleton(tracing_from, settings))
    reading_codec = providers.Singleton(
        lambda registry, settings: reading_codec(registry, settings.topics.sensor_readings),
        registry,
        settings,
    )
    alert_codec = providers.Singleton(
        lambda registry, settings: alert_codec(registry, settings.topics.system_alerts),
        registry,
        settings,
    )


async def bootstrap(
    settings: Settings,
    *,
    log: EventLog | None = None,
    registry: SchemaRegistry | None = None,
    store: SensorStore | None = None,
    checkpoint: CheckpointStore | None = None,
    clock: Clock | None = None,
    timeseries: TimeSeries | None = None,
    migrate: bool = False,
    require_schema: bool = False,
    metrics: bool = False,
    database: bool = True,
    tracing: Tracing | None = None,
) -> Pipeline:
    """Wire a Pipeline from `settings`; any argument given replaces the adapter it names
    (and is closed with the pipeline). With `migrate`, the database schema is upgraded to
    the latest revision first; with `require_schema`, a database not at the latest revision
    is a ConfigurationError that says to run `pipeline db upgrade`. Metrics are kept
    (Prometheus) when `settings.metrics.port` is set, or with `metrics` (the API's). Without
    `database` the process opens no database (a worker of a job under Kafka authority needs
    none): the store is the embedded in-memory one."""
    container = Container(settings=settings)
    container.metrics.override(providers.Object(metrics))
    if log is not None:
        container.log.override(providers.Resource(_owned_log, log))
    if registry is not None:
        container.registry.override(providers.Object(registry))
    if clock is not None:
        container.clock.override(providers.Object(clock))
    if timeseries is not None:
        container.timeseries.override(providers.Resource(_owned_timeseries, timeseries))
    if store is None and not database:
        store = InMemorySensorStore()
    if store is None:
        store = await _sql_store(settings, migrate=migrate, require_schema=require_schema)
    container.sensor_store.override(providers.Object(store))
    if checkpoint is not None:
        container.checkpoint.override(
            providers.Resource(_owned_checkpoint, container.store, checkpoint)
        )
    if tracing is not None:
        container.tracing.override(providers.Resource(_owned_tracing, tracing))
    resources: Any = container.init_resources()
    if resources is not None:
        await resources
    tracing = await _resolved(container.tracing())
    log_ = await _resolved(container.log())
    publishing_log, traced_checkpoint = _traced(
        tracing, log_, await _resolved(container.checkpoint()), settings
    )
    return Pipeline(
        settings=settings,
        log=log_,
        registry=container.registry(),
        store=await _resolved(container.store()),
        checkpoint=traced_checkpoint,
        shop=await _resolved(container.shop()),
        clock=container.clock(),
        reading_codec=container.reading_codec(),
        alert_codec=container.alert_codec(),
        telemetry=container.telemetry(),
        tracing=tracing,
        publishing_log=publishing_log,
        container=container,
        timeseries=await _resolved(container.timeseries()),
    )


async def _resolved(value: Any) -> Any:
    # A provider that depends on an async resource answers with an awaitable.
    if asyncio.isfuture(value) or asyncio.iscoroutine(value):
        return await value
    return value
