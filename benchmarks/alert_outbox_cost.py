"""What an alert costs a worker once raised, on the real stack: model alerts shaped like the
sensors job's (`anomaly`, a score, every feature, the model's version) stored through the
PostgreSQL alerts sink a batch at a time, each batch's new alerts then handed to the sensors
job's outbox relay as a worker hands them (`JobEntry.on_events`: publish to the alerts topic,
wait for the broker, mark published). Prints the CPU per alert of each part (the process's,
librdkafka's threads included) and the wall-clock seconds.

    eval "$(scripts/stack env)"
    uv run python benchmarks/alert_outbox_cost.py --batches 10 --alerts 250 --rounds 3

`pipeline bench sensors --events 100000 --ml` raises 2,000–3,200 alerts in about ten batches;
the defaults store and relay 2,500 in ten. A fresh alerts topic each run; the database is
`PIPELINE_DATABASE__URL`'s (migrated first). A benchmark that prints figures, not a test."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from pipeline.adapters.sql.postgres_sinks import PostgresAlertsSink
from pipeline.domain import DEFAULT_CATALOG
from pipeline.domain.alerts import Alert, AlertKind, Severity, alert_id_for
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings
from pipeline.jobs.sensor_anomalies import feature_names

FEATURES = feature_names(DEFAULT_CATALOG)


def model_alerts(count: int, rng: random.Random) -> list[Alert]:
    """`count` model alerts of distinct readings, as the sensors job raises them."""
    start = datetime.now(UTC).replace(microsecond=0)
    alerts = []
    for _ in range(count):
        sensor = f"sensor-{rng.randrange(1_000):04d}"
        at = start - timedelta(microseconds=rng.randrange(10**12))
        value, score = 20.0 + rng.random(), rng.random() / 10
        alerts.append(
            Alert(
                alert_id=alert_id_for(sensor, at, AlertKind.ANOMALY),
                source=sensor,
                kind=AlertKind.ANOMALY,
                severity=Severity.WARNING,
                message=(
                    f"temperature {value:g} C on sensor {sensor} at hall-1 scored anomalous "
                    f"({score:.3f}) by model forest-bench"
                ),
                timestamp=at,
                sensor_type="temperature",
                value=value,
                score=score,
                model_version="forest-bench",
                features={name: rng.gauss() for name in FEATURES},
            )
        )
    return alerts


async def one_round(settings: Settings, batches: int, per_batch: int, seed: int) -> float:
    """Store and relay `batches` of `per_batch` alerts; print and return the CPU seconds."""
    pipeline = await bootstrap(settings, migrate=True)
    await pipeline.ensure_topics()
    relay = pipeline.job("sensors").on_events
    assert relay is not None
    on_events = relay(pipeline)
    await on_events(())  # a worker's first call, before its first poll
    url = settings.database.url.get_secret_value().replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(url)
    rng = random.Random(seed)
    sink = PostgresAlertsSink()
    store_cpu = relay_cpu = 0.0
    wall = time.perf_counter()
    try:
        for _ in range(batches):
            alerts = model_alerts(per_batch, rng)
            started = time.process_time()
            async with connection.transaction():
                stored = await sink.write(connection, alerts, [None] * len(alerts))
            middle = time.process_time()
            await on_events(stored.events)
            relay_cpu += time.process_time() - middle
            store_cpu += middle - started
    finally:
        wall = time.perf_counter() - wall
        await connection.close()
        await pipeline.aclose()
    total = batches * per_batch
    print(
        f"{total:,} alerts in {batches} batches: store {1e6 * store_cpu / total:.1f} µs CPU "
        f"an alert, relay {1e6 * relay_cpu / total:.1f} µs; both {store_cpu + relay_cpu:.3f} s "
        f"CPU, {wall:.2f} s wall",
        flush=True,
    )
    return store_cpu + relay_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--alerts", type=int, default=250, help="alerts a batch")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds: list[float] = []
    for n in range(args.rounds):
        base = Settings()
        topics = base.topics.model_copy(
            update={"system_alerts": f"bench-alerts-{uuid.uuid4().hex[:8]}"}
        )
        settings = base.model_copy(update={"topics": topics})
        rounds.append(asyncio.run(one_round(settings, args.batches, args.alerts, n)))
    total = args.batches * args.alerts
    print(
        f"median: {1e6 * statistics.median(rounds) / total:.1f} µs CPU an alert, stored and relayed"
    )


if __name__ == "__main__":
    main()
