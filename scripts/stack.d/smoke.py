"""Smoke test of the local service stack (run by `scripts/stack smoke`).

Proves, from Python with the project's own client libraries, that each service started by
scripts/stack really works the way the application needs it to:

* Kafka: topic creation (6 partitions), idempotent producer, consumer group + commit,
  transactional producer (needs the RF=1 transaction state topic).
* Apicurio Registry through its Confluent-compatible API (confluent-kafka's
  SchemaRegistryClient): register / get by id / latest version, per-subject compatibility,
  refusal of an incompatible schema under BACKWARD, Avro serializer round trip.
* PostgreSQL: asyncpg with the application URL, CREATE/DROP DATABASE with the admin URL.

Configuration comes from the environment printed by `scripts/stack env`.
Exit status 0 when everything works, 1 otherwise.
"""

# ruff: noqa: BLE001, PT017, PT018
# (a standalone script, not a pytest module: plain asserts, and every failure is reported)
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

BOOTSTRAP = os.environ["PIPELINE_KAFKA__BOOTSTRAP_SERVERS"]
DB_URL = os.environ["PIPELINE_DATABASE__URL"]
REGISTRY_URL = os.environ["PIPELINE_REGISTRY__URL"]
PG_ADMIN_URL = os.environ["PIPELINE_STACK_PG_ADMIN_URL"]

RUN = uuid.uuid4().hex[:8]
results: list[tuple[str, bool, str]] = []


def check(name: str) -> Callable[[Callable[[], str | None]], Callable[[], str | None]]:
    def deco(fn: Callable[[], str | None]) -> Callable[[], str | None]:
        t0 = time.monotonic()
        try:
            detail = fn() or ""
            ok = True
        except Exception as exc:  # report every failure, keep going
            detail = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            ok = False
        dt = time.monotonic() - t0
        results.append((name, ok, f"{detail} ({dt:.2f}s)"))
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail} ({dt:.2f}s)", flush=True)
        return fn

    return deco


# ----------------------------------------------------------------------------- Kafka
TOPIC = f"stack-smoke-{RUN}"


@check("kafka: create topic with 6 partitions")
def kafka_topic() -> str:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    futures = admin.create_topics([NewTopic(TOPIC, num_partitions=6, replication_factor=1)])
    futures[TOPIC].result(timeout=30)
    md = admin.list_topics(topic=TOPIC, timeout=10)
    n = len(md.topics[TOPIC].partitions)
    assert n == 6, f"expected 6 partitions, got {n}"
    return f"{TOPIC} has {n} partitions, broker(s) {sorted(md.brokers)}"


@check("kafka: auto-create of topics is disabled")
def kafka_no_autocreate() -> str:
    p = Producer({"bootstrap.servers": BOOTSTRAP, "message.timeout.ms": 3000})
    errors: list[Any] = []
    p.produce(f"stack-smoke-missing-{RUN}", b"x", on_delivery=lambda err, _m: errors.append(err))
    p.flush(10)
    assert errors and errors[0] is not None, "producing to a missing topic should fail"
    return f"produce to a missing topic fails: {errors[0].name()}"


@check("kafka: idempotent producer produce + flush")
def kafka_produce() -> str:
    p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all"})
    delivered: list[Any] = []

    def cb(err: Any, msg: Any) -> None:
        if err is not None:
            raise KafkaException(err)
        delivered.append((msg.partition(), msg.offset()))

    for i in range(60):
        p.produce(TOPIC, key=f"k{i}".encode(), value=f"v{i}".encode(), on_delivery=cb)
    left = p.flush(30)
    assert left == 0, f"{left} messages not delivered"
    assert len(delivered) == 60
    return f"60 messages delivered to {len({d[0] for d in delivered})} partitions"


@check("kafka: consumer group consume + commit")
def kafka_consume() -> str:
    group = f"stack-smoke-{RUN}"
    c = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([TOPIC])
    got = 0
    deadline = time.monotonic() + 60
    while got < 60 and time.monotonic() < deadline:
        msg = c.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got += 1
    assert got == 60, f"consumed {got}/60"
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(TOPIC, p) for p in range(6)], timeout=10)
    total = sum(tp.offset for tp in committed if tp.offset >= 0)
    c.close()
    assert total == 60, f"committed offsets sum to {total}"
    return f"group {group} consumed 60 and committed offsets summing to {total}"


@check("kafka: transactional producer (init/commit/abort) + read_committed")
def kafka_transactions() -> str:
    p = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": f"stack-smoke-{RUN}"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(TOPIC, key=b"tx", value=b"committed")
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce(TOPIC, key=b"tx", value=b"aborted")
    p.abort_transaction(30)
    c = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"stack-smoke-tx-{RUN}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    c.subscribe([TOPIC])
    seen: list[bytes] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = c.poll(1.0)
        if msg is None:
            if b"committed" in seen:
                break
            continue
        if msg.error():
            raise KafkaException(msg.error())
        if msg.key() == b"tx":
            seen.append(msg.value())
    c.close()
    assert seen == [b"committed"], f"read_committed saw {seen}"
    return "init_transactions ok; read_committed sees the committed record only"


@check("kafka: delete topic")
def kafka_cleanup() -> str:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.delete_topics([TOPIC])[TOPIC].result(timeout=30)
    return f"{TOPIC} deleted"


# ----------------------------------------------------------------------------- registry
SUBJECT = f"stack-smoke-{RUN}-value"
V1 = {
    "type": "record",
    "name": "Reading",
    "namespace": "smoke",
    "fields": [{"name": "sensor_id", "type": "string"}, {"name": "value", "type": "double"}],
}
V2_COMPATIBLE = {
    **V1,
    "fields": [*V1["fields"], {"name": "unit", "type": ["null", "string"], "default": None}],
}
V2_INCOMPATIBLE = {**V1, "fields": [*V1["fields"], {"name": "site", "type": "string"}]}
sr = SchemaRegistryClient({"url": REGISTRY_URL})
ids: dict[str, int] = {}


@check("registry: register + get by id + latest version")
def sr_register() -> str:
    sid = sr.register_schema(SUBJECT, Schema(json.dumps(V1), "AVRO"))
    ids["v1"] = sid
    again = sr.register_schema(SUBJECT, Schema(json.dumps(V1), "AVRO"))
    assert again == sid, f"re-registering gave id {again} != {sid}"
    fetched = sr.get_schema(sid)
    assert json.loads(fetched.schema_str) == V1, fetched.schema_str
    latest = sr.get_latest_version(SUBJECT)
    assert latest.schema_id == sid and latest.version == 1, latest
    # A fresh client (no cache) must get the same answers.
    fresh = SchemaRegistryClient({"url": REGISTRY_URL})
    assert json.loads(fresh.get_schema(sid).schema_str) == V1
    return f"id={sid}, latest version={latest.version}"


@check("registry: global compatibility defaults to BACKWARD")
def sr_global_compat() -> str:
    level = sr.get_compatibility()
    assert level == "BACKWARD", level
    return f"global level {level}"


@check("registry: set/get subject compatibility BACKWARD")
def sr_compat() -> str:
    sr.set_compatibility(subject_name=SUBJECT, level="BACKWARD")
    level = sr.get_compatibility(SUBJECT)
    assert level == "BACKWARD", level
    return f"subject level {level}"


@check("registry: incompatible schema is refused under BACKWARD")
def sr_incompatible() -> str:
    assert sr.test_compatibility(SUBJECT, Schema(json.dumps(V2_INCOMPATIBLE), "AVRO")) is False
    try:
        sid = sr.register_schema(SUBJECT, Schema(json.dumps(V2_INCOMPATIBLE), "AVRO"))
    except SchemaRegistryError as exc:
        assert exc.http_status_code == 409, exc.http_status_code
        assert exc.error_code == 409, exc.error_code
        versions = sr.get_versions(SUBJECT)
        assert versions == [1], versions
        return (
            f"refused: http {exc.http_status_code}, error_code {exc.error_code}, "
            f"message {exc.error_message!r}"
        )
    raise AssertionError(f"incompatible schema was accepted with id {sid}")


@check("registry: compatible evolution accepted")
def sr_compatible() -> str:
    assert sr.test_compatibility(SUBJECT, Schema(json.dumps(V2_COMPATIBLE), "AVRO")) is True
    sid = sr.register_schema(SUBJECT, Schema(json.dumps(V2_COMPATIBLE), "AVRO"))
    ids["v2"] = sid
    # SchemaRegistryClient caches get_latest_version() (client side, like against Confluent):
    # ask through a fresh client.
    latest = SchemaRegistryClient({"url": REGISTRY_URL}).get_latest_version(SUBJECT)
    assert latest.version == 2 and latest.schema_id == sid, latest
    found = sr.lookup_schema(SUBJECT, Schema(json.dumps(V1), "AVRO"))
    assert found.schema_id == ids["v1"] and found.version == 1, found
    return f"v2 id={sid} (v1 id={ids['v1']}), versions {sr.get_versions(SUBJECT)}"


@check("registry: AvroSerializer / AvroDeserializer round trip")
def sr_serde() -> str:
    subject_topic = f"stack-smoke-serde-{RUN}"
    ser = AvroSerializer(sr, json.dumps(V1))
    de = AvroDeserializer(sr)
    ctx = SerializationContext(subject_topic, MessageField.VALUE)
    record = {"sensor_id": "s-1", "value": 21.5}
    data = ser(record, ctx)
    assert data is not None and data[0] == 0, "expected Confluent wire format (magic byte 0)"
    schema_id = int.from_bytes(data[1:5], "big")
    back = de(data, ctx)
    assert back == record, back
    # The serializer auto-registered under <topic>-value with the same content → same id.
    assert schema_id == ids["v1"], f"id {schema_id} != {ids['v1']} for identical content"
    sr.delete_subject(f"{subject_topic}-value")
    sr.delete_subject(f"{subject_topic}-value", permanent=True)
    return f"wire-format id {schema_id}, record round-tripped"


@check("registry: delete subject (soft, then permanent)")
def sr_delete() -> str:
    soft = sr.delete_subject(SUBJECT)
    hard = sr.delete_subject(SUBJECT, permanent=True)
    assert SUBJECT not in sr.get_subjects()
    return f"soft {soft}, permanent {hard}"


# ----------------------------------------------------------------------------- postgres
def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg() -> str:
    conn = await asyncpg.connect(_plain(DB_URL))
    try:
        version = await conn.fetchval("SHOW server_version")
        await conn.execute("CREATE TEMP TABLE smoke (id int primary key, v text)")
        await conn.execute("INSERT INTO smoke VALUES (1, 'a') ON CONFLICT (id) DO NOTHING")
        assert await conn.fetchval("SELECT v FROM smoke WHERE id = 1") == "a"
        max_conn = await conn.fetchval("SHOW max_connections")
    finally:
        await conn.close()
    name = f"stack_smoke_{RUN}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        scratch = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
        assert await scratch.fetchval("SELECT current_database()") == name
        await scratch.close()
        await admin.execute(f'DROP DATABASE "{name}"')
    finally:
        await admin.close()
    return f"server {version}, max_connections {max_conn}, created+dropped database {name}"


@check("postgres: asyncpg app URL + CREATE DATABASE via admin URL")
def pg() -> str:
    return asyncio.run(_pg())


@check("postgres: SQLAlchemy async engine with the application URL")
def pg_sqlalchemy() -> str:
    async def run() -> str:
        engine = create_async_engine(DB_URL)
        try:
            async with engine.connect() as conn:
                user = (await conn.execute(text("SELECT current_user"))).scalar_one()
                db = (await conn.execute(text("SELECT current_database()"))).scalar_one()
        finally:
            await engine.dispose()
        return f"connected as {user} to {db}"

    return asyncio.run(run())


def main() -> int:
    failed = [name for name, ok, _ in results if not ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} checks passed", flush=True)
    for name in failed:
        print(f"  FAILED: {name}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
