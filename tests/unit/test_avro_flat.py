"""The flat-record reader (`adapters/avro/flat.py`) reads what fastavro reads, or declines:
on readings of every shape, and on arbitrary and damaged bodies it never returns values
fastavro would not."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.adapters.avro import SENSOR_READING, load_schema, reading_codec, reading_row_codec
from pipeline.adapters.avro.flat import flat_fields, read_flat
from pipeline.adapters.avro.schemas import parse
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.application.errors import MalformedPayload
from pipeline.domain import Reading
from pipeline.domain.sensor_columns import ReadingRow, row_of

SCHEMA = parse(load_schema(SENSOR_READING))
FIELDS = flat_fields(SCHEMA)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

READINGS = st.builds(
    Reading,
    sensor_id=st.text(max_size=300),
    sensor_type=st.text(max_size=20),
    value=st.floats(allow_nan=False),
    unit=st.text(max_size=10),
    timestamp=st.integers(min_value=-(2**40), max_value=2**52).map(
        lambda us: EPOCH + timedelta(microseconds=us)
    ),
    location=st.text(max_size=300),
    battery_level=st.one_of(st.none(), st.floats(allow_nan=False)),
    signal_strength=st.one_of(st.none(), st.floats(allow_nan=False)),
)


def fastavro_values(body: bytes) -> list[Any] | None:
    """The field values fastavro reads from a whole body, or None if it cannot."""
    stream = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(stream, SCHEMA, None)
    except Exception:
        return None
    if stream.tell() != len(body) or not isinstance(record, dict):
        return None
    return list(record.values())


def body_of(reading: Reading) -> bytes:
    codec = reading_codec(InMemorySchemaRegistry(), "r")
    return asyncio.run(codec.encode(reading))[5:]


def damaged(body: bytes) -> st.SearchStrategy[bytes]:
    """The body cut short, extended, or with one byte changed."""
    return st.one_of(
        st.integers(0, max(0, len(body) - 1)).map(lambda n: body[:n]),
        st.binary(min_size=1, max_size=4).map(lambda extra: body + extra),
        st.tuples(st.integers(0, max(0, len(body) - 1)), st.integers(0, 255)).map(
            lambda change: body[: change[0]] + bytes([change[1]]) + body[change[0] + 1 :]
        ),
    )


def test_the_rows_fields_are_the_schemas_in_its_order() -> None:
    assert ReadingRow._fields == tuple(f["name"] for f in SCHEMA["fields"])
    assert FIELDS is not None


@settings(max_examples=300, deadline=None)
@given(READINGS)
def test_a_reading_is_read_as_fastavro_reads_it(reading: Reading) -> None:
    assert FIELDS is not None
    body = body_of(reading)

    values = read_flat(body, 0, FIELDS)

    assert values == fastavro_values(body)
    assert ReadingRow._make(values or []) == row_of(reading)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=80), READINGS.map(body_of).flatmap(damaged)))
def test_whatever_it_reads_from_any_body_fastavro_reads_the_same(body: bytes) -> None:
    assert FIELDS is not None
    values = read_flat(body, 0, FIELDS)

    if values is not None:
        assert values == fastavro_values(body)


def test_a_body_it_declines_is_reported_as_fastavro_finds_it() -> None:
    registry = InMemorySchemaRegistry()
    writer, rows = reading_codec(registry, "r"), reading_row_codec(registry, "r")
    good = asyncio.run(
        writer.encode(
            Reading(
                sensor_id="t-1",
                sensor_type="temperature",
                value=1.0,
                unit="celsius",
                timestamp=EPOCH,
                location="site",
            )
        )
    )

    [ok, extra, cut] = asyncio.run(rows.decode_many([good, good + b"\x00", good[:-3]]))

    assert ok == ReadingRow("t-1", "temperature", 1.0, "celsius", EPOCH, "site")
    assert isinstance(extra, MalformedPayload)
    assert "1 bytes left after the record" in str(extra)
    assert isinstance(cut, MalformedPayload)


def test_schemas_it_cannot_read_keep_fastavro() -> None:
    assert (
        flat_fields({"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]})
        is None
    )
    assert (
        flat_fields(
            {
                "type": "record",
                "name": "R",
                "fields": [{"name": "u", "type": {"type": "string", "logicalType": "uuid"}}],
            }
        )
        is None
    )
