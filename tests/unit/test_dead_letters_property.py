"""Property: however valid readings are interleaved with random bytes, truncated Avro, wrong
magic bytes, unknown schema ids and impossible values, the sensors worker never stops; every
valid reading is stored once and every bad record is dead-lettered once (topic and store) with
the right error class, and the offsets move past all of them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.dead_letters import H_ERROR_CLASS, dead_letter_topic
from pipeline.application.ports import DeadLetterFilter, Record, TopicPartition
from pipeline.domain import Reading
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import Settings, WorkerSettings
from pipeline.entrypoints.worker import run_named_job

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# Each item: (kind, parameter); the record's expected fate follows from it.
ITEMS = st.one_of(
    st.tuples(st.just("valid"), st.floats(min_value=-20, max_value=40)),
    st.tuples(st.just("random"), st.binary(min_size=1, max_size=40).filter(lambda b: b[0] != 0)),
    st.tuples(st.just("truncated"), st.integers(min_value=1, max_value=200)),
    st.tuples(st.just("magic"), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("unknown"), st.integers(min_value=10_000, max_value=2**31 - 1)),
    st.tuples(st.just("impossible"), st.sampled_from([-500.0, 1e9, float("nan")])),
)


def reading(i: int, value: float) -> Reading:
    return Reading(
        sensor_id=f"temp-{i:04d}",
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=NOW - timedelta(seconds=30),
        location="site-01/floor-1",
    )


async def record_for(
    pipeline: Pipeline, i: int, kind: str, parameter: object
) -> tuple[bytes, str | None]:
    """The value of record `i` and its expected error class (None: a valid reading)."""
    codec = pipeline.reading_codec
    good = await codec.encode(reading(i, 21.0))
    if kind == "valid":
        assert isinstance(parameter, float)
        return await codec.encode(reading(i, parameter)), None
    if kind == "random":
        assert isinstance(parameter, bytes)
        return parameter, "bad_magic_byte"
    if kind == "truncated":
        assert isinstance(parameter, int)
        cut = parameter % len(good)
        return good[:cut], "bad_magic_byte" if cut < 5 else "malformed_payload"
    if kind == "magic":
        assert isinstance(parameter, int)
        return bytes([parameter]) + good[1:], "bad_magic_byte"
    if kind == "unknown":
        assert isinstance(parameter, int)
        return b"\x00" + parameter.to_bytes(4, "big") + good[5:], "unknown_schema_id"
    assert isinstance(parameter, float)
    return await codec.encode(reading(i, parameter)), "reading_out_of_range"


async def scenario(items: list[tuple[str, object]], batch_size: int) -> None:
    pipeline = await bootstrap(
        Settings(worker=WorkerSettings(batch_size=batch_size)),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
        clock=ManualClock(NOW),
    )
    await pipeline.ensure_topics()
    topic = pipeline.settings.topics.sensor_readings
    expected: dict[bytes, str] = {}
    valid = 0
    for i, (kind, parameter) in enumerate(items):
        value, error_class = await record_for(pipeline, i, kind, parameter)
        key = f"rec-{i}".encode()
        await pipeline.log.publish(topic, key, value)
        if error_class is None:
            valid += 1
        else:
            expected[key] = error_class

    stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    assert stats.records == len(items)
    assert await pipeline.store.count_readings() == valid
    letters = await dead_letters_on_topic(pipeline, dead_letter_topic(topic))
    assert {r.key: dict(r.headers)[H_ERROR_CLASS].decode() for r in letters} == expected
    assert len(letters) == len(expected)
    stored = await pipeline.dead_letter_store().find_dead_letters(
        DeadLetterFilter(), limit=len(items) + 1
    )
    assert {x.key: x.error_class for x in stored} == expected
    assert len(stored) == len(expected)
    ends = await pipeline.log.end_offsets(topic)
    offsets = await pipeline.checkpoint.stored_offsets(
        pipeline.group_id("sensors"), [TopicPartition(topic, p) for p in ends]
    )
    assert {tp.partition: o for tp, o in offsets.items()} == {p: n for p, n in ends.items() if n}


async def dead_letters_on_topic(pipeline: Pipeline, topic: str) -> list[Record]:
    ends = await pipeline.log.end_offsets(topic)
    reader = pipeline.log.reader(
        group_id="check", start={TopicPartition(topic, p): 0 for p in ends}
    )
    records: list[Record] = []
    while len(records) < sum(ends.values()):
        records += await reader.poll(10_000, 0.1)
    await reader.close()
    return records


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(ITEMS, min_size=1, max_size=40), batch_size=st.integers(1, 16))
def test_every_record_ends_once_in_the_projection_or_the_dead_letters(
    items: list[tuple[str, object]], batch_size: int
) -> None:
    asyncio.run(scenario(items, batch_size))
