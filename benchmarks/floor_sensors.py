"""The floor: the fastest honest minimal script doing the sensors worker's work, against which
`pipeline bench floor` measures the worker (a benchmark, not a test).

It reads a sensor-readings topic from its start with confluent-kafka (`consume(n)` batches),
decodes each value with fastavro (the Confluent framing's schema id looked up once in the
registry), COPYs the batch into a session-private stage and stores it with one statement: the
readings inserted by their natural key and the ones really inserted merged into their
one-minute aggregates (the statement the sensors worker used before the stream engine). The
batch's next offsets are stored in the same transaction, and committed to Kafka after it. It
validates nothing, keeps no state, raises no alerts and handles no failure: whatever the worker
spends beyond this is the price of its guarantees and its generality.

    python benchmarks/floor_sensors.py --topic T --group G --until-caught-up

Endpoints come from the environment `scripts/stack env` exports (PIPELINE_KAFKA__…,
PIPELINE_DATABASE__URL, PIPELINE_REGISTRY__URL). It prints the readings stored and the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import struct
import sys
import time
import urllib.request
from typing import Any

import asyncpg
import fastavro
from confluent_kafka import Consumer, KafkaError

STAGE = """
CREATE TEMP TABLE floor_stage (
    sensor_id text, "time" timestamptz, sensor_type text, value float8, unit text,
    location text, battery_level float8, signal_strength float8, source_topic text,
    source_partition int4, source_offset int8
) ON COMMIT DELETE ROWS
"""
COLUMNS = (
    "sensor_id", "time", "sensor_type", "value", "unit", "location", "battery_level",
    "signal_strength", "source_topic", "source_partition", "source_offset",
)  # fmt: skip
STORE = """
WITH inserted AS (
    INSERT INTO readings (sensor_id, "time", sensor_type, value, unit, location, battery_level,
                          signal_strength, source_topic, source_partition, source_offset)
    SELECT * FROM floor_stage
    ON CONFLICT (sensor_id, "time") DO NOTHING
    RETURNING sensor_id, sensor_type, "time", value
), batch AS (
    SELECT sensor_id, min(sensor_type) AS sensor_type,
           date_bin('1 minute', "time", TIMESTAMPTZ '1970-01-01 00:00:00+00') AS window_start,
           count(*) AS n, min(value) AS lo, max(value) AS hi, avg(value) AS mean,
           var_pop(value) * count(*) AS m2
    FROM inserted
    GROUP BY sensor_id, window_start
), merged AS (
    INSERT INTO reading_aggregates_1m AS a
        (sensor_id, window_start, window_end, sensor_type, count, min, max, mean, m2, stddev,
         updated_at)
    SELECT sensor_id, window_start, window_start + interval '1 minute', sensor_type, n, lo, hi,
           mean, m2, sqrt(m2 / n), now()
    FROM batch
    ON CONFLICT (sensor_id, window_start) DO UPDATE SET
        count = a.count + excluded.count,
        min = least(a.min, excluded.min),
        max = greatest(a.max, excluded.max),
        mean = a.mean + (excluded.mean - a.mean) * excluded.count / (a.count + excluded.count),
        m2 = a.m2 + excluded.m2
             + (excluded.mean - a.mean) ^ 2 * a.count * excluded.count / (a.count + excluded.count),
        stddev = sqrt(greatest(0.0, (a.m2 + excluded.m2
             + (excluded.mean - a.mean) ^ 2 * a.count * excluded.count
               / (a.count + excluded.count)) / (a.count + excluded.count))),
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)
"""
OFFSETS = """
INSERT INTO consumer_offsets AS o (group_id, topic, "partition", next_offset, updated_at)
SELECT $1, $2, p.partition, p.next_offset, now()
FROM unnest($3::int4[], $4::int8[]) AS p(partition, next_offset)
ON CONFLICT (group_id, topic, "partition") DO UPDATE SET next_offset = excluded.next_offset
"""


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Schemas:
    """Writer schemas by Confluent schema id, fetched from the registry once each."""

    def __init__(self, registry: str) -> None:
        self._registry = registry.rstrip("/")
        self._parsed: dict[int, Any] = {}

    def get(self, schema_id: int) -> Any:
        found = self._parsed.get(schema_id)
        if found is None:
            url = f"{self._registry}/schemas/ids/{schema_id}"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = json.loads(response.read())["schema"]
            found = self._parsed[schema_id] = fastavro.parse_schema(json.loads(text))
        return found


async def run(args: argparse.Namespace) -> int:
    env = os.environ
    consumer = Consumer(
        {
            "bootstrap.servers": env["PIPELINE_KAFKA__BOOTSTRAP_SERVERS"],
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([args.topic])
    schemas = Schemas(env["PIPELINE_REGISTRY__URL"])
    conn = await asyncpg.connect(_dsn(env["PIPELINE_DATABASE__URL"]))
    await conn.execute(STAGE)
    reader = fastavro.schemaless_reader
    stored = 0
    at_end: set[int] = set()
    started = time.monotonic()
    try:
        while True:
            messages = consumer.consume(args.batch_size, timeout=0.5)
            rows = []
            next_offsets: dict[int, int] = {}
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition())
                        continue
                    raise RuntimeError(str(error))
                value = message.value()
                partition = message.partition()
                at_end.discard(partition)
                (schema_id,) = struct.unpack_from(">I", value, 1)
                r = reader(io.BytesIO(value[5:]), schemas.get(schema_id), None)
                get = r.get
                row = (r["sensor_id"], r["timestamp"], r["sensor_type"], r["value"], r["unit"],
                       r["location"], get("battery_level"), get("signal_strength"), args.topic,
                       partition, message.offset())  # fmt: skip
                rows.append(row)
                next_offsets[partition] = message.offset() + 1
            if rows:
                async with conn.transaction():
                    await conn.copy_records_to_table("floor_stage", records=rows, columns=COLUMNS)
                    stored += await conn.fetchval(STORE)
                    await conn.execute(
                        OFFSETS, args.group, args.topic, list(next_offsets),
                        list(next_offsets.values()),
                    )  # fmt: skip
                consumer.commit(asynchronous=True)
            assigned = {tp.partition for tp in consumer.assignment()}
            if args.until_caught_up and assigned and assigned <= at_end and not rows:
                break
    finally:
        consumer.close()
        await conn.close()
    print(f"floor: {stored} readings stored in {time.monotonic() - started:.2f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--until-caught-up", action="store_true")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
