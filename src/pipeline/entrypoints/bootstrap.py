"""The composition root: the only place that chooses adapters.

`bootstrap(settings, **overrides)` builds a `Pipeline` from settings: real adapters where an
endpoint is configured, embedded ones otherwise; any piece can be overridden (tests pass
in-memory fakes, the demo shares one in-memory log between producer and worker)."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from pipeline.adapters.avro import alert_codec, reading_codec
from pipeline.adapters.clock import SystemClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry
from pipeline.application.alerts import AlertRelay
from pipeline.application.dead_letters import DeadLetterPublisher
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import (
    Clock,
    Codec,
    DeadLetterStore,
    EventLog,
    SchemaRegistry,
    SensorStore,
    TopicSpec,
)
from pipeline.application.retries import RetryRouter
from pipeline.application.sensors import SensorProjection
from pipeline.application.topic_names import dead_letter_topic, retry_topic
from pipeline.application.topic_policy import TopicKind, topic_config
from pipeline.application.worker import RetryPolicy
from pipeline.domain import Alert, Reading
from pipeline.entrypoints.settings import Settings


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the application owns, with its partition count and its configuration
    by kind (retention, compaction: see `pipeline.application.topic_policy`)."""
    topics = settings.topics

    def config(kind: TopicKind) -> dict[str, str]:
        return topic_config(kind, retention_hours=topics.retention_hours)

    specs = [
        TopicSpec(
            name=topics.sensor_readings,
            partitions=topics.sensor_readings_partitions,
            config=config(TopicKind.EVENTS),
        ),
        # The dead-letter topic of every consumed topic, partitioned like it.
        TopicSpec(
            name=dead_letter_topic(topics.sensor_readings),
            partitions=topics.sensor_readings_partitions,
            config=config(TopicKind.DEAD_LETTERS),
        ),
    ]
    # The retry topics of the readings topic, partitioned like it.
    specs += [
        TopicSpec(
            name=retry_topic(topics.sensor_readings, level),
            partitions=topics.sensor_readings_partitions,
            config=config(TopicKind.RETRY),
        )
        for level in range(1, len(settings.retry.topic_delays_s) + 1)
    ]
    specs += [
        TopicSpec(name=name, partitions=topics.default_partitions, config=config(TopicKind.EVENTS))
        for name in (
            topics.ecommerce_events,
            topics.transactions,
            topics.social_posts,
            topics.system_alerts,
        )
    ]
    specs.append(
        TopicSpec(
            name=topics.sensor_metadata,
            partitions=topics.default_partitions,
            config=config(TopicKind.CHANGELOG),
        )
    )
    return specs


@dataclass(kw_only=True)
class Pipeline:
    """Wired services shared by the entrypoints of one process."""

    settings: Settings
    log: EventLog
    registry: SchemaRegistry
    store: SensorStore
    clock: Clock
    reading_codec: Codec[Reading]
    alert_codec: Codec[Alert]
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
        """The consumer group of a worker, e.g. `pipeline-sensors`."""
        return f"{self.settings.worker.group_id_prefix}-{worker}"

    def retry_policy(self) -> RetryPolicy:
        """In-place retries of a batch failing transiently, from the `retry` settings."""
        retry = self.settings.retry
        return RetryPolicy(
            initial=retry.initial_backoff_s,
            maximum=retry.max_backoff_s,
            attempts=retry.in_place_attempts,
        )

    def sensor_projection(
        self, group_id: str, *, publish_dead_letters: bool = True
    ) -> SensorProjection:
        """The sensor projection for consumer group `group_id`. Its dead letters go to the
        dead-letter topic unless `publish_dead_letters` is false (a replay: the records were
        dead-lettered when first consumed); they are stored in the database either way.
        With them, a batch that keeps failing transiently can be diverted to retry topics."""
        retries = None
        if publish_dead_letters:
            retries = RetryRouter(
                self.log,
                delays_s=self.settings.retry.topic_delays_s,
                worker_id=self.worker_id,
                group_id=group_id,
            )
        return SensorProjection(
            group_id=group_id,
            codec=self.reading_codec,
            store=self.store,
            clock=self.clock,
            thresholds=self.settings.domain_thresholds(),
            max_clock_skew=timedelta(seconds=self.settings.worker.max_clock_skew_seconds),
            dead_letters=DeadLetterPublisher(self.log) if publish_dead_letters else None,
            worker_id=self.worker_id,
            retries=retries,
        )

    def dead_letter_store(self) -> DeadLetterStore:
        """Where the dead letters are stored: the sensor store's `dead_letters`."""
        found = getattr(self.store, "dead_letters", None)
        if not isinstance(found, DeadLetterStore):
            raise ConfigurationError(f"{type(self.store).__name__} keeps no dead letters")
        return found

    def alert_relay(self) -> AlertRelay:
        """The outbox relay publishing stored alerts to the alerts topic."""
        return AlertRelay(
            store=self.store,
            log=self.log,
            codec=self.alert_codec,
            topic=self.settings.topics.system_alerts,
        )

    async def aclose(self) -> None:
        """Flush and close the log, close the store. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.log.close()
        finally:
            await self.store.close()


def _event_log(settings: Settings) -> EventLog:
    kafka = settings.kafka
    if kafka.bootstrap_servers is None:
        return InMemoryEventLog()
    from pipeline.adapters.kafka import KafkaEventLog  # noqa: PLC0415 - only when configured

    return KafkaEventLog(
        bootstrap_servers=kafka.bootstrap_servers,
        client_config=kafka.client_config(),
        client_id=kafka.client_id,
        replication_factor=kafka.replication_factor,
        min_insync_replicas=kafka.min_insync_replicas,
    )


def _registry(settings: Settings) -> SchemaRegistry:
    registry = settings.registry
    if registry.url is None:
        return InMemorySchemaRegistry()
    from pipeline.adapters.registry import ConfluentSchemaRegistry  # noqa: PLC0415

    auth = registry.basic_auth.get_secret_value() if registry.basic_auth else None
    return ConfluentSchemaRegistry(url=registry.url, basic_auth=auth)


async def _store(settings: Settings, *, migrate: bool, require_schema: bool) -> SensorStore:
    from pipeline.adapters.sql import SqlSensorStore, create_engine  # noqa: PLC0415
    from pipeline.adapters.sql.migrate import require_current, upgrade  # noqa: PLC0415

    url = settings.database.url.get_secret_value()
    if migrate:
        await asyncio.to_thread(upgrade, url)
    elif require_schema:
        await require_current(url)
    database = settings.database
    return SqlSensorStore(
        create_engine(url, pool_size=database.pool_size, max_overflow=database.max_overflow)
    )


async def bootstrap(
    settings: Settings,
    *,
    log: EventLog | None = None,
    registry: SchemaRegistry | None = None,
    store: SensorStore | None = None,
    clock: Clock | None = None,
    migrate: bool = False,
    require_schema: bool = False,
) -> Pipeline:
    """Wire a Pipeline from `settings`; any argument given replaces the adapter it names.
    With `migrate`, the database schema is upgraded to the latest revision first; with
    `require_schema`, a database not at the latest revision is a ConfigurationError that says
    to run `pipeline db upgrade` (rather than errors on missing tables later)."""
    registry = registry if registry is not None else _registry(settings)
    return Pipeline(
        settings=settings,
        log=log if log is not None else _event_log(settings),
        registry=registry,
        store=store
        if store is not None
        else await _store(settings, migrate=migrate, require_schema=require_schema),
        clock=clock if clock is not None else SystemClock(),
        reading_codec=reading_codec(registry, settings.topics.sensor_readings),
        alert_codec=alert_codec(registry, settings.topics.system_alerts),
    )
