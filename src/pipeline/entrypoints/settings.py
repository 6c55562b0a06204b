"""Settings: nested pydantic-settings read from `PIPELINE_…` environment variables.

`PIPELINE_KAFKA__BOOTSTRAP_SERVERS=host:port` selects real Kafka, `PIPELINE_DATABASE__URL`
a real database, `PIPELINE_REGISTRY__URL` a real schema registry. Left unset, the embedded
adapters are used (in-memory log and registry, a SQLite file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.domain import DEFAULT_THRESHOLDS, Threshold

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///pipeline.db"


_SECRET_OPTION = re.compile(r"password|secret|key|token", re.IGNORECASE)
"""librdkafka option names that hold (or point at) secrets: `ssl.key.password`,
`sasl.oauthbearer.client.secret`, `ssl.key.pem`, … They are kept as SecretStr."""


class KafkaSettings(BaseModel):
    """The Kafka cluster. Unset `bootstrap_servers` selects the in-memory log."""

    bootstrap_servers: str | None = None
    """Comma-separated host:port list of brokers."""
    client_id: str = "pipeline"
    """Client id reported to the brokers."""
    security_protocol: str | None = None
    """librdkafka `security.protocol` (PLAINTEXT, SSL, SASL_SSL, …)."""
    sasl_mechanism: str | None = None
    """librdkafka `sasl.mechanism` (PLAIN, SCRAM-SHA-512, …)."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password (masked in `pipeline config`)."""
    ssl_ca_location: str | None = None
    """librdkafka `ssl.ca.location`: the CA file (PEM) the brokers' certificates are verified
    against, e.g. the stack's `.stack/security/ca.pem`."""
    replication_factor: int = -1
    """Replication factor of the topics the application creates; -1 derives it from the
    cluster: 3 when it has three brokers or more, else the number of brokers."""
    min_insync_replicas: int = -1
    """`min.insync.replicas` of the topics the application creates; -1 derives it from the
    replication factor: 2 from three replicas up, else 1."""
    connect_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """Seconds a command waits for a broker to answer its first request before it stops,
    saying no broker answers at the configured address."""
    options: dict[str, str | SecretStr] = Field(default_factory=dict)
    """Extra librdkafka options passed through verbatim, e.g.
    `PIPELINE_KAFKA__OPTIONS='{"ssl.ca.location": "/etc/ca.pem"}'`. Options whose name
    says password, secret, key or token are kept as secrets: masked wherever settings are
    shown or logged."""
    consumer_options: dict[str, str | SecretStr] = Field(default_factory=dict)
    """librdkafka options of the consumers only, over the defaults and `options`, e.g. a
    larger prefetch: `PIPELINE_KAFKA__CONSUMER_OPTIONS='{"queued.max.messages.kbytes":
    "65536"}'` (an option set in `options` reaches the producers too, which warn that they
    ignore a consumer's option). Secrets are kept as in `options`."""

    @field_validator("options", "consumer_options", mode="before")
    @classmethod
    def _secret_options(cls, options: object) -> object:
        if not isinstance(options, dict):
            return options  # pydantic says what is wrong with it
        kept: dict[object, object] = {}
        for name, value in options.items():
            if not isinstance(value, str | SecretStr):
                # Named, never echoed: the value may be a secret. (A ValueError, the one
                # pydantic reports as a validation error.)
                message = f"the value of option {name!r} must be a string"
                raise ValueError(message)  # noqa: TRY004
            secret = isinstance(name, str) and _SECRET_OPTION.search(name)
            kept[name] = SecretStr(value) if secret and isinstance(value, str) else value
        return kept

    @field_validator("bootstrap_servers")
    @classmethod
    def _numeric_ports(cls, value: str | None) -> str | None:
        for server in (value or "").split(","):
            address = server.strip().rpartition("://")[2]
            host, colon, port = address.rpartition(":")
            if colon and not host.endswith("]") and ":" in host:
                continue  # a bare IPv6 address, no port
            if colon and not (port.isdigit() and 0 < int(port) < 65_536):
                raise ValueError(
                    f"{server.strip()!r}: the port must be a number from 1 to 65535 "
                    "(host:port[,host:port…])"
                )
        return value

    def client_config(self) -> dict[str, str]:
        """librdkafka's dotted keys for everything but the bootstrap servers."""
        config: dict[str, str] = {}
        if self.security_protocol:
            config["security.protocol"] = self.security_protocol
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config | _revealed(self.options)

    def consumer_config(self) -> dict[str, str]:
        """librdkafka's dotted keys of the consumers' own options."""
        return _revealed(self.consumer_options)


def _revealed(options: dict[str, str | SecretStr]) -> dict[str, str]:
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in options.items()
    }


class DatabaseSettings(BaseModel):
    """The projection database."""

    url: SecretStr = SecretStr(DEFAULT_SQLITE_URL)
    """SQLAlchemy async URL: `postgresql+asyncpg://user:pw@host:port/db` for PostgreSQL, or
    `sqlite+aiosqlite:///path.db` (the embedded default). Secret because it may hold a password."""
    pool_size: int = Field(default=5, ge=1, le=1000)
    """Connections kept open per process (PostgreSQL)."""
    max_overflow: int = Field(default=0, ge=0, le=1000)
    """Extra connections opened when the pool is busy, closed again after use. Zero by
    default: under load, opening and closing connections per request costs PostgreSQL more
    than waiting a moment for a pooled one."""

    @field_validator("url")
    @classmethod
    def _parsable(cls, value: SecretStr) -> SecretStr:
        # Checked here, so that a bad URL is an invalid setting rather than a traceback
        # wherever it is first used; the message never repeats the URL (its password).
        example = "e.g. postgresql+asyncpg://user:password@host:5432/db"
        if value.get_secret_value() == DEFAULT_SQLITE_URL:
            return value
        # SQLAlchemy only once a database is configured: commands that need none start faster.
        from sqlalchemy.engine import make_url  # noqa: PLC0415
        from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

        try:
            url = make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError(f"not a database URL ({example})") from None
        except ValueError:  # SQLAlchemy's int() of the port
            raise ValueError(f"the port must be a number ({example})") from None
        if url.port is not None and not 0 < url.port < 65_536:
            raise ValueError("the port must be a number from 1 to 65535")
        return value

    @property
    def is_default(self) -> bool:
        """True when no database was configured."""
        return self.url.get_secret_value() == DEFAULT_SQLITE_URL


class RegistrySettings(BaseModel):
    """The schema registry. Unset `url` selects the in-memory registry."""

    url: str | None = None
    """Confluent-compatible registry URL, e.g. `http://127.0.0.1:18081/apis/ccompat/v7`."""
    basic_auth: SecretStr | None = None
    """`user:password` for HTTP basic auth."""


class TopicSettings(BaseModel):
    """Topic names (defaults follow the seed) and partition counts."""

    sensor_readings: str = "sensor-readings"
    ecommerce_events: str = "ecommerce-events"
    transactions: str = "transactions"
    social_posts: str = "social-posts"
    system_alerts: str = "system-alerts"
    sensor_metadata: str = "sensor-metadata"
    """Compacted changelog of the `sensor_metadata` reference table (per-sensor location and
    thresholds), written by the Debezium connector `connectors/sensor-metadata.json`."""
    accounts: str = "accounts"
    """Payment account profiles: compacted, keyed by account id (the latest per account)."""
    payment_outcomes: str = "payment-outcomes"
    """Authorisations and chargebacks of transactions, keyed by account id."""
    social_engagement: str = "social-engagement"
    """Likes and shares of posts, keyed by post id."""
    sensor_aggregates: str = "sensor-aggregates-1m"
    """Output of the `sensor-aggregates` job (as many partitions as the readings topic)."""
    social_hashtags: str = "social-hashtags"
    """One record per hashtag of each valid post, keyed by the tag: written by the
    `social-tags` job, counted by the `social` job."""
    sensor_readings_partitions: int = 6
    """Partitions of the readings topic; readings are keyed by sensor id."""
    default_partitions: int = 3
    """Partitions of the other topics."""
    retention_hours: Annotated[float, Field(gt=0)] = 168.0
    """`retention.ms` of the event and retry topics the application creates (7 days);
    dead-letter topics keep their records until purged, changelogs are compacted."""


class ConnectSettings(BaseModel):
    """Kafka Connect, managed by `pipeline connect`."""

    url: str | None = None
    """REST URL of a Connect worker, e.g. `http://127.0.0.1:18083`."""
    config_dir: str | None = None
    """Directory of the connector configs (`*.json`); default: the `connectors/` shipped with
    pipeline."""


class WorkerSettings(BaseModel):
    """Consumer workers."""

    group_id_prefix: str = "pipeline"
    """Consumer groups are named `<prefix>-<worker>`, e.g. `pipeline-sensors`."""
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    """Most records handled (and committed) in one batch."""
    batch_timeout: Annotated[float, Field(gt=0, le=60)] = 0.5
    """Seconds a poll waits for the first record of a batch."""
    max_clock_skew_seconds: Annotated[float, Field(ge=0)] = 300.0
    """Readings stamped further than this in the future are invalid."""
    idle_timeout_s: Annotated[float, Field(gt=0, le=86_400)] = 30.0
    """A partition that sends nothing for this long has its watermark follow the wall
    clock, so windows of quiet keys and partitions still close."""
    sensor_window_grace_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = 3600.0
    """How long after its minute a sensor's one-minute window still takes readings (by the
    partition's watermark); later readings are stored but go to the late topic instead."""
    sensor_aggregates_grace_s: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    """How long after its minute the `sensor-aggregates` job's window still takes readings
    before it closes and its one final record is written to the aggregates topic."""
    native_decode: bool = True
    """The sensors job decodes readings with the compiled core (`pipeline_native`) where it
    is installed; false: with fastavro, as where it is not."""
    instance_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    """Static group membership (Kafka's `group.instance.id`) for a worker restarted in place
    (a StatefulSet pod, a systemd unit): restarted under the same id within the session
    timeout, it takes its partitions back without a rebalance. Unique per live worker."""


class SocialSettings(BaseModel):
    """The social jobs: trending hashtags, their burst alerts, engagement per post."""

    top_k: Annotated[int, Field(ge=1, le=1_000)] = 10
    """Tags ranked per hop of the trending window (per partition of the hashtags topic)."""
    window_grace_s: Annotated[float, Field(ge=0, le=86_400)] = 120.0
    """How long after its end a hop of the 15-minute trending window still takes uses."""
    burst_threshold: Annotated[float, Field(gt=0)] = 5.0
    """Burst score (Poisson z-score against the tag's baseline) from which a hop bursts; its
    count must also be as improbable under Poisson(baseline) as this many normal sigmas."""
    burst_min_count: Annotated[int, Field(ge=1)] = 10
    """Fewest uses of a tag in a hop for it to burst."""
    burst_min_ratio: Annotated[float, Field(ge=1)] = 2.0
    """A bursting hop counts at least this many times the tag's baseline."""
    burst_baseline_minutes: Annotated[int, Field(ge=30, le=24 * 60)] = 120
    """The tag's baseline: its mean count per hop over this long before the hop."""
    burst_cooldown_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 30
    """A bursting hop starts a new burst (and alert) only if none burst this long before."""
    engagement_within_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = 3600.0
    """Likes and shares count for a post when they come at most this long after it."""
    join_grace_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    """How long the post–engagement join waits past an interval for records out of order."""


class RetrySettings(BaseModel):
    """Transient failures (database or broker unavailable, timeouts, deadlocks): retried in
    place with the partitions paused, then through retry topics, finally the DLQ."""

    in_place_attempts: Annotated[int, Field(ge=1, le=1_000)] = 6
    """Attempts of a failing batch in place before it goes to a retry topic (only when the
    database answers: during an outage it is retried in place for as long as it takes)."""
    initial_backoff_s: Annotated[float, Field(gt=0, le=60)] = 0.2
    """First in-place backoff; it doubles per attempt (with jitter) up to the maximum."""
    max_backoff_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """Longest in-place backoff."""
    topic_delays_s: list[Annotated[float, Field(ge=0, le=86_400)]] = Field(
        default_factory=lambda: [5.0, 30.0, 300.0]
    )
    """Delay of each retry topic `<topic>.retry.N` (its length is the number of levels;
    empty: a batch past its in-place budget goes straight to the DLQ), e.g.
    `PIPELINE_RETRY__TOPIC_DELAYS_S='[5, 30, 300]'`."""

    @model_validator(mode="after")
    def _backoff_order(self) -> RetrySettings:
        if self.initial_backoff_s > self.max_backoff_s:
            raise ValueError("retry.initial_backoff_s must not exceed retry.max_backoff_s")
        if len(self.topic_delays_s) > 10:
            raise ValueError("retry.topic_delays_s allows at most 10 retry topics")
        return self


class ApiSettings(BaseModel):
    """The HTTP API (`pipeline api`)."""

    host: str = "127.0.0.1"
    """Interface to listen on; 0.0.0.0 exposes the API to the network."""
    port: Annotated[int, Field(ge=0, le=65_535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Server processes (uvicorn workers)."""
    api_key_hashes: list[str] = Field(default_factory=list)
    """Hex SHA-256 digests of the accepted API keys (the keys themselves are never stored):
    `PIPELINE_API__API_KEY_HASHES='["<sha256 hex>"]'`. Empty: mutating endpoints refuse all."""
    require_key_for_reads: bool = False
    """Require an API key on read endpoints too (health and docs stay open)."""
    ws_queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    """Messages waiting for one live-view client (`/ws/sensors`) before newer ones are
    dropped for it (and counted): a slow client loses messages instead of slowing others."""
    ws_heartbeat_s: Annotated[float, Field(gt=0, le=3600)] = 15.0
    """Seconds between heartbeat frames on `/ws/sensors`."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins whose pages may call the API from a browser (CORS), e.g.
    `PIPELINE_API__CORS_ORIGINS='["https://ops.example.com"]'`. Empty (the default): none."""
    ws_max_clients: Annotated[int, Field(ge=1, le=100_000)] = 500
    """Live-view clients one API process serves at once; more are refused (close code 1013,
    try again later)."""
    ws_shop_interval_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    """Seconds between two reads of the shop's tables for the `/ws/shop` connections (one read
    for all of them; a frame is sent when they changed)."""

    @field_validator("api_key_hashes")
    @classmethod
    def _hex_sha256(cls, values: list[str]) -> list[str]:
        normalized = [v.strip().lower() for v in values]
        for value in normalized:
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ValueError("api_key_hashes must be hex SHA-256 digests (64 hex characters)")
        return normalized


class MetricsSettings(BaseModel):
    """Prometheus metrics of a worker (the API always serves its own on its port)."""

    port: Annotated[int, Field(ge=0, le=65_535)] | None = None
    """Port of a worker's `/metrics` (`pipeline-worker --metrics-port`); 0 picks a free one
    (logged). Unset: no metrics are kept and nothing is served."""
    host: str = "127.0.0.1"
    """Interface a worker's `/metrics` listens on; 0.0.0.0 exposes it (e.g. in a container)."""
    sample_interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    """How often a worker samples consumer lag, retry-topic depth and state size."""


class TracingSettings(BaseModel):
    """OpenTelemetry traces, exported over OTLP/HTTP (e.g. to Jaeger). Off unless an
    endpoint is set."""

    endpoint: AnyHttpUrl | None = None
    """OTLP/HTTP base URL of the trace collector, e.g. `http://127.0.0.1:4318` (spans go to
    `<endpoint>/v1/traces`). Unset: no tracing, nothing recorded or propagated."""
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 0.01
    """Share of traces recorded where this process starts them (a produced record, an API
    request without a sampled caller); a trace whose parent was sampled is always
    continued, so one decision holds along the pipeline."""
    service_name: Annotated[str, Field(min_length=1, max_length=200)] = "pipeline"
    """The `service.name` this process's spans carry (in Jaeger's service list)."""


class TimeSeriesSettings(BaseModel):
    """The time-series server (InfluxDB's v2 write API). Unset `url`: no time-series sinks."""

    url: str | None = None
    """e.g. `http://127.0.0.1:8086`; set, the sensors job also writes its readings and
    one-minute aggregates there."""
    token: SecretStr = SecretStr("")
    """API token (`Authorization: Token …`); empty for a server without authentication."""
    org: str = "pipeline"
    bucket: str = "sensors"
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    """Points per write request."""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """Seconds one write request may take."""
    retries: Annotated[int, Field(ge=0, le=100)] = 5
    """Times a request answered with 429 or a 5xx, or that cannot connect, is sent again
    (backoff doubling from 0.5 s up to 8 s, with jitter) before the batch fails."""


class AnomalySettings(BaseModel):
    """Anomaly detection in the sensors job (see the README's "Anomaly detection")."""

    enabled: bool = False
    """Score every reading with the `sensors` model family's current model; flagged ones
    become `anomaly` alerts (detector ml)."""
    model: Literal["forest", "zscore"] = "forest"
    """What retraining fits: scikit-learn's Isolation Forest, or the per-sensor z-score."""
    contamination: Annotated[float, Field(gt=0, le=0.5)] = 0.03
    """Share of the training sample a fitted model flags (its decision threshold)."""
    store: Literal["filesystem", "database"] = "filesystem"
    """Where models are kept: `store_dir/<family>`, or the database's `anomaly_models`
    table."""
    store_dir: Path = Path(".models")
    """The filesystem model store's directory."""
    retrain_every_readings: Annotated[int, Field(ge=1)] = 1_000_000
    """Retrain after this many readings were scored... (a bound for busy fleets: below
    ~1,700 readings/s the ten minutes come first; see the README's "Retraining")."""
    retrain_every_s: Annotated[float, Field(gt=0)] = 600.0
    """...or after this many seconds, whichever comes first."""
    sample_size: Annotated[int, Field(ge=100)] = 20_000
    """Recent unflagged readings kept to retrain on (the newest fifth is held out)."""
    min_sample: Annotated[int, Field(ge=10)] = 2_000
    """No retraining before this many readings are sampled."""


class ThresholdSetting(BaseModel):
    """Operating limits of one sensor type."""

    low: float | None = None
    high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None


def _default_thresholds() -> dict[str, ThresholdSetting]:
    return {
        name: ThresholdSetting(
            low=t.low, high=t.high, critical_low=t.critical_low, critical_high=t.critical_high
        )
        for name, t in DEFAULT_THRESHOLDS.items()
    }


class ShopSettings(BaseModel):
    """The shop job (`pipeline-worker shop`): its windows and its conversion-drop alert."""

    window_grace_s: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    """How long after its end (by the partition's watermark) a shop window (session,
    funnel, revenue, top products, conversion) still takes events; later ones go to
    `ecommerce-events.late`."""
    conversion_drop_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.3
    """A five-minute conversion rate below this × its recent level raises an alert."""
    conversion_recent_windows: Annotated[int, Field(ge=1, le=288)] = 12
    """Five-minute windows before it that make the recent level (12: the hour before)."""
    conversion_min_views: Annotated[int, Field(ge=1)] = 100
    """Page views a window needs (per partition) before its rate is judged."""
    conversion_min_recent_purchases: Annotated[int, Field(ge=1)] = 20
    """Purchases the recent windows need (per partition) before a drop is judged."""


class PaymentsSettings(BaseModel):
    """The payments job: its fraud rules and how long it waits (`PIPELINE_PAYMENTS__…`)."""

    grace_s: Annotated[float, Field(ge=0, le=86_400)] = 30.0
    """How late (behind the partition's watermark) a transaction or outcome may arrive and
    still be judged or joined; later ones go to the late topic."""
    outcome_window_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = 7_200.0
    """How long after a transaction its outcomes (authorisation, chargeback) are joined."""
    lookback_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = 86_400.0
    """How much of an account's history the fraud rules see."""
    velocity_window_s: Annotated[float, Field(gt=0)] = 300.0
    velocity_count: Annotated[int, Field(ge=2)] = 5
    """Payments (tiny ones not counted) within the velocity window that flag the last."""
    card_testing_window_s: Annotated[float, Field(gt=0)] = 300.0
    card_testing_count: Annotated[int, Field(ge=2)] = 3
    """Tiny online payments within the card-testing window that flag the last."""
    tiny_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.4
    """A payment of at most this fraction of the account's typical amount is tiny."""
    max_speed_kmh: Annotated[float, Field(gt=0)] = 1_000.0
    """Card-present payments further apart than this speed allows are impossible travel."""
    amount_factor: Annotated[float, Field(gt=1)] = 10.0
    """A payment of at least this many times the typical amount is a spike…"""
    amount_sigmas: Annotated[float, Field(ge=0)] = 4.0
    """…and more than this many standard deviations above the recent mean."""
    night_start_hour: Annotated[float, Field(ge=0, lt=24)] = 0.0
    night_end_hour: Annotated[float, Field(gt=0, le=24)] = 5.0
    """Local hours (home country) the new-category-at-night rule looks at."""
    scoring: bool = False
    """Score every judged transaction with the `payments` model family's current model;
    flagged ones become `anomaly` alerts (detector ml). Store, model kind and retraining as
    `PIPELINE_ANOMALY__…`."""
    contamination: Annotated[float, Field(gt=0, le=0.5)] = 0.04
    """Share of its training sample a fitted payments model flags (about the share of fraud
    expected)."""


class Settings(BaseSettings):
    """Everything pipeline can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="PIPELINE_",
        env_nested_delimiter="__",
        env_file=None,
        extra="ignore",
        # A setting that fails validation may be a secret: errors name it, never echo it.
        hide_input_in_errors=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    connect: ConnectSettings = Field(default_factory=ConnectSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    shop: ShopSettings = Field(default_factory=ShopSettings)
    payments: PaymentsSettings = Field(default_factory=PaymentsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    social: SocialSettings = Field(default_factory=SocialSettings)
    timeseries: TimeSeriesSettings = Field(default_factory=TimeSeriesSettings)
    anomaly: AnomalySettings = Field(default_factory=AnomalySettings)
    thresholds: dict[str, ThresholdSetting] = Field(default_factory=_default_thresholds)
    """Alert thresholds per sensor type, merged over the defaults type by type, e.g.
    `PIPELINE_THRESHOLDS='{"temperature": {"high": 40, "critical_high": 60}}'`."""
    log_level: str = "INFO"
    """Log level of the structured (JSON) logs on stderr."""
    log_format: str = "console"
    """`console` for people, `json` for log shippers."""

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return level

    def domain_thresholds(self) -> dict[str, Threshold]:
        """The thresholds as domain objects, by sensor type: the configured ones over the
        defaults, type by type (a type configured with every bound null has no alerts)."""
        merged = {**_default_thresholds(), **self.thresholds}
        return {name: Threshold(sensor_type=name, **t.model_dump()) for name, t in merged.items()}

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked (SecretStr values, Kafka
        options named like secrets, URL passwords). The database URL is shown with only its
        password hidden, so the endpoint it points at can be checked."""
        data = self.model_dump(mode="json")
        if self.registry.url is not None:
            data["registry"]["url"] = _without_password(self.registry.url)
        if self.timeseries.url is not None:
            data["timeseries"]["url"] = _without_password(self.timeseries.url)
        from sqlalchemy.engine import make_url  # noqa: PLC0415
        from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

        try:
            url = make_url(self.database.url.get_secret_value())
        except ArgumentError:
            return data  # not a URL: stays fully masked
        data["database"]["url"] = url.render_as_string(hide_password=True)
        return data


def _without_password(url: str) -> str:
    """`url` with the password of its user info (`user:password@`) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
