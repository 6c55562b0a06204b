"""The compiled decode core (`pipeline_native`) against fastavro: for every valid
`SensorReading` the sensors codec's native path gives exactly the values, types and time
zones of its fastavro path; every malformed body is a MalformedPayload naming the schema id
on both; and the native path is the one taken for the codec's own schema, not for a
resolved one, nor when switched off or not installed."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.adapters.avro import AvroCodec, load_schema, reading_row_codec
from pipeline.adapters.avro.schemas import SENSOR_READING
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.application.errors import DecodeError, MalformedPayload
from pipeline.domain.sensor_columns import ReadingRow, row_of
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.settings import Settings
from tests.avro_events import reading, reading_schema_v2
from tests.services import services_required

# Skipped where the core is not installed, except where missing parts must fail the run (CI).
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pipeline_native") is None and not services_required(),
    reason="the compiled core is not installed (uv sync --no-group native)",
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCHEMA_TEXT = load_schema(SENSOR_READING)
SCHEMA = json.loads(SCHEMA_TEXT)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_MICROS = (datetime.min.replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
MAX_MICROS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def prepared() -> tuple[AvroCodec[ReadingRow], AvroCodec[ReadingRow], bytes]:
    """Both paths of the sensors codec on one registry, and the header of their schema id."""

    async def build() -> tuple[AvroCodec[ReadingRow], AvroCodec[ReadingRow], bytes]:
        registry = InMemorySchemaRegistry()
        native = reading_row_codec(registry, "readings", native=True)
        plain = reading_row_codec(registry, "readings", native=False)
        schema_id = await native.schema_id()
        assert schema_id == await plain.schema_id()
        return native, plain, b"\0" + schema_id.to_bytes(4, "big")

    return asyncio.run(build())


NATIVE, PLAIN, HEADER = prepared()


def body(record: dict[str, Any], schema: dict[str, Any] = SCHEMA) -> bytes:
    """The Avro body fastavro writes for `record`."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def writer_with(field: str, avro_type: Any) -> dict[str, Any]:
    """The reading schema with one field's type changed: bodies it writes are malformed for
    the reading schema in a chosen way."""
    schema = json.loads(SCHEMA_TEXT)
    for each in schema["fields"]:
        if each["name"] == field:
            each["type"] = avro_type
    return schema


def decode_both(payloads: list[bytes]) -> tuple[list[Any], list[Any]]:
    native = asyncio.run(NATIVE.decode_many(payloads))
    plain = asyncio.run(PLAIN.decode_many(payloads))
    return native, plain


def same_value(left: object, right: object) -> bool:
    """Equal and of the same type; NaN equals NaN, -0.0 only -0.0; a datetime's tzinfo is
    the very same object."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and isinstance(right, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return left == right and math.copysign(1.0, left) == math.copysign(1.0, right)
    if isinstance(left, datetime) and isinstance(right, datetime):
        return left == right and left.tzinfo is right.tzinfo
    return left == right


def assert_malformed_on_both(payloads: list[bytes]) -> None:
    native, plain = decode_both(payloads)
    schema_id = f"schema id {int.from_bytes(HEADER[1:], 'big')}"
    for result in (*native, *plain):
        assert type(result) is MalformedPayload, result
        assert schema_id in str(result)


texts = st.text()  # empty, and any code point but surrogates: non-BMP ones included
doubles = st.floats()  # NaN, ±inf, -0.0, subnormals
timestamps = st.integers(min_value=MIN_MICROS, max_value=MAX_MICROS) | st.sampled_from(
    [MIN_MICROS, MAX_MICROS, -1, 0, 1]
)
records = st.fixed_dictionaries(
    {
        "sensor_id": texts,
        "sensor_type": texts,
        "value": doubles,
        "unit": texts,
        "timestamp": timestamps,
        "location": texts,
        "battery_level": st.none() | doubles,
        "signal_strength": st.none() | doubles,
    }
)


def test_the_sensors_codec_takes_the_native_path_where_it_is_installed() -> None:
    assert NATIVE.native
    assert not PLAIN.native


@PROPERTY
@given(st.lists(records, min_size=1, max_size=8))
def test_native_rows_equal_fastavro_rows_in_value_type_and_time_zone(
    batch: list[dict[str, Any]],
) -> None:
    native, plain = decode_both([HEADER + body(record) for record in batch])

    for native_row, plain_row in zip(native, plain, strict=True):
        assert type(native_row) is type(plain_row) is ReadingRow
        for left, right in zip(native_row, plain_row, strict=True):
            assert same_value(left, right), (native_row, plain_row)
        assert native_row.timestamp.tzinfo is UTC


@PROPERTY
@given(st.lists(st.sampled_from(["a", "b", "ü", "😀"]), min_size=2, max_size=6))
def test_equal_strings_of_a_batch_are_one_object(ids: list[str]) -> None:
    template = {**row_of(reading(0))._asdict(), "timestamp": 0}
    payloads = [HEADER + body({**template, "sensor_id": sensor_id}) for sensor_id in ids]

    rows = asyncio.run(NATIVE.decode_many(payloads))

    by_text: dict[str, object] = {}
    for row in rows:
        assert isinstance(row, ReadingRow)
        assert by_text.setdefault(row.sensor_id, row.sensor_id) is row.sensor_id


@PROPERTY
@given(
    records,
    st.integers(min_value=-(2**63), max_value=MIN_MICROS - 1)
    | st.integers(min_value=MAX_MICROS + 1, max_value=2**63 - 1),
)
def test_a_timestamp_no_datetime_holds_is_malformed_on_both(
    record: dict[str, Any], micros: int
) -> None:
    assert_malformed_on_both([HEADER + body({**record, "timestamp": micros})])


@PROPERTY
@given(records)
def test_a_body_truncated_at_any_length_is_malformed_on_both(record: dict[str, Any]) -> None:
    whole = HEADER + body(record)

    assert_malformed_on_both([whole[:cut] for cut in range(len(HEADER), len(whole))])


@PROPERTY
@given(records, st.binary(min_size=1, max_size=16))
def test_trailing_bytes_are_malformed_on_both(record: dict[str, Any], tail: bytes) -> None:
    assert_malformed_on_both([HEADER + body(record) + tail])


def with_union_index(record: dict[str, Any], second: bool, index: int, tail: bytes) -> bytes:
    """A payload of `record` whose first or second optional field has union index `index`."""
    # With both optional fields null the body ends in their union indexes, 0 and 0.
    fields = body({**record, "battery_level": None, "signal_strength": None})[:-2]
    indexes = b"\x00" + _zigzag(index) if second else _zigzag(index)
    return HEADER + fields + indexes + tail


@PROPERTY
@given(records, st.booleans(), st.integers(min_value=2, max_value=2**62), st.binary(max_size=9))
def test_a_union_index_past_the_branches_is_malformed_on_both(
    record: dict[str, Any], second: bool, index: int, tail: bytes
) -> None:
    assert_malformed_on_both([with_union_index(record, second, index, tail)])


@PROPERTY
@given(records, st.booleans(), st.integers(min_value=-(2**62), max_value=-1))
def test_a_negative_union_index_is_malformed_on_the_native_path(
    record: dict[str, Any], second: bool, index: int
) -> None:
    # fastavro indexes its list of branches with it, so -1 reads the last branch: a known
    # leniency of the fastavro path. The core holds to the specification.
    payload = with_union_index(record, second, index, b"\x00" * 9)

    [result] = asyncio.run(NATIVE.decode_many([payload]))

    assert type(result) is MalformedPayload
    assert f"schema id {int.from_bytes(HEADER[1:], 'big')}" in str(result)


def _zigzag(number: int) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", number)
    return out.getvalue()


@PROPERTY
@given(
    records,
    st.sampled_from(["sensor_id", "sensor_type", "unit", "location"]),
    st.binary(min_size=1, max_size=12).filter(lambda raw: not _is_utf8(raw)),
)
def test_invalid_utf8_is_malformed_on_both(record: dict[str, Any], field: str, raw: bytes) -> None:
    # Bytes and strings share their encoding: a bytes writer writes any octets.
    encoded = body({**record, field: raw}, writer_with(field, "bytes"))

    assert_malformed_on_both([HEADER + encoded])


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@PROPERTY
@given(
    records,
    st.sampled_from(["sensor_id", "sensor_type", "unit", "location"]),
    st.integers(min_value=-(2**63), max_value=-1),
)
def test_a_negative_string_length_is_malformed_on_both(
    record: dict[str, Any], field: str, length: int
) -> None:
    # A string's length is a long: a long writer writes a negative one.
    encoded = body({**record, field: length}, writer_with(field, "long"))

    assert_malformed_on_both([HEADER + encoded])


# --- which path is taken ------------------------------------------------------------------


class ReaderCalled(AssertionError):
    """fastavro's reader was called."""


def refuse_fastavro(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ReaderCalled

    monkeypatch.setattr(fastavro, "schemaless_reader", refuse)


async def test_own_schema_is_decoded_natively_and_a_resolved_writer_by_fastavro(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = InMemorySchemaRegistry()
    producer = reading_row_codec(registry, "readings", native=False)
    rows = [row_of(reading(i)) for i in range(3)]
    own = await producer.encode_many(rows)
    newer = AvroCodec(
        registry=registry,
        subject="readings-value",
        schema=reading_schema_v2(),
        to_avro=lambda record: record,
        from_avro=lambda record: record,
    )
    resolved = await newer.encode({**body_fields(rows[0]), "firmware": "2.0"})
    consumer = reading_row_codec(registry, "readings")  # another process: ids not known yet
    refuse_fastavro(monkeypatch)

    results = await consumer.decode_many([*own, resolved])

    assert results[:3] == rows  # fastavro's reader refuses: the core read them
    assert type(results[3]) is MalformedPayload
    assert "ReaderCalled" in str(results[3])  # schema resolution went to fastavro


def body_fields(row: ReadingRow) -> dict[str, Any]:
    return {**row._asdict(), "timestamp": (row.timestamp - EPOCH) // timedelta(microseconds=1)}


async def test_switched_off_the_sensors_codec_reads_with_fastavro(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPELINE_WORKER__NATIVE_DECODE", "false")
    pipeline = SimpleNamespace(settings=Settings(), registry=InMemorySchemaRegistry())
    [codec] = JOBS["sensors"].codecs(pipeline).values()  # type: ignore[arg-type]
    payload = await codec.encode(row_of(reading(1)))
    refuse_fastavro(monkeypatch)

    [result] = await codec.decode_many([payload])

    assert not codec.native
    assert type(result) is MalformedPayload
    assert "ReaderCalled" in str(result)


async def test_the_sensors_job_codec_is_native_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PIPELINE_WORKER__NATIVE_DECODE", raising=False)
    pipeline = SimpleNamespace(settings=Settings(), registry=InMemorySchemaRegistry())

    [codec] = JOBS["sensors"].codecs(pipeline).values()  # type: ignore[arg-type]

    assert codec.native


async def test_without_the_core_installed_the_codec_reads_with_fastavro(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pipeline_native", None)  # import raises ImportError
    codec = reading_row_codec(InMemorySchemaRegistry(), "readings")

    payload = await codec.encode(row_of(reading(2)))

    assert not codec.native
    assert await codec.decode_many([payload]) == [row_of(reading(2))]


async def test_a_schema_the_core_does_not_read_stays_with_fastavro() -> None:
    # A map is not a flat record's field: the codec reads with fastavro, as ever.
    schema = {
        "type": "record",
        "name": "Tagged",
        "fields": [{"name": "tags", "type": {"type": "map", "values": "string"}}],
    }
    codec: AvroCodec[Any] = AvroCodec(
        registry=InMemorySchemaRegistry(),
        subject="tagged-value",
        schema=schema,
        to_avro=lambda record: record,
        from_avro=lambda record: record,
        from_values=lambda values: values,
    )

    payload = await codec.encode({"tags": {"a": "b"}})

    assert not codec.native
    assert await codec.decode_many([payload]) == [{"tags": {"a": "b"}}]


async def test_a_failing_from_values_is_malformed_naming_the_schema_id() -> None:
    def refuse(values: tuple[Any, ...]) -> ReadingRow:
        raise ValueError("no")

    codec = AvroCodec(
        registry=InMemorySchemaRegistry(),
        subject="readings-value",
        schema=SCHEMA_TEXT,
        to_avro=body_fields,
        from_avro=lambda record: ReadingRow(**record),
        from_values=refuse,
    )
    payload = await codec.encode(row_of(reading(3)))

    [result] = await codec.decode_many([payload])

    assert codec.native
    assert isinstance(result, DecodeError)
    assert f"schema id {await codec.schema_id()}: ValueError: no" in str(result)
