"""AvroCodec with the in-memory registry: Confluent wire format, every event type, every
way a payload can be bad, and schema evolution between versions."""

from __future__ import annotations

import importlib.util
import io
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from pipeline.adapters.avro import (
    SENSOR_READING,
    AvroCodec,
    account_profile_codec,
    alert_codec,
    engagement_codec,
    load_schema,
    mapping,
    payment_outcome_codec,
    post_codec,
    reading_codec,
    reading_row_codec,
    shop_event_codec,
    transaction_codec,
)
from pipeline.adapters.avro.mapping import (
    reading_from_avro,
    reading_row_reader,
    reading_to_avro,
)
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.application.errors import (
    BadMagicByte,
    DecodeError,
    MalformedPayload,
    MissingValue,
    TransientError,
    UnknownSchemaId,
)
from pipeline.domain.sensor_columns import ReadingRow, reading_of, row_of
from pipeline.domain.sensors import Reading
from tests.avro_events import (
    account_profile,
    alert,
    bare_alert,
    engagement,
    payment_outcomes,
    post,
    reading,
    reading_schema_v2,
    shop_events,
    transaction,
    transfer,
)
from tests.services import services_required


class CountingRegistry(InMemorySchemaRegistry):
    """The in-memory registry, counting the requests the codec makes."""

    def __init__(self) -> None:
        super().__init__()
        self.registrations = 0
        self.lookups = 0

    async def register(self, subject: str, schema: str) -> int:
        self.registrations += 1
        return await super().register(subject, schema)

    async def schema(self, schema_id: int) -> str:
        self.lookups += 1
        return await super().schema(schema_id)


@pytest.fixture
def registry() -> CountingRegistry:
    return CountingRegistry()


@pytest.fixture(params=["fastavro", "native"])
def codec(request: pytest.FixtureRequest, registry: CountingRegistry) -> AvroCodec[Reading]:
    """The readings' codec, reading its own schema with fastavro or with the compiled core
    (`from_values`); every test of it runs both ways."""
    if request.param == "fastavro":
        return reading_codec(registry, "sensor-readings")
    if importlib.util.find_spec("pipeline_native") is None and not services_required():
        pytest.skip("the compiled core is not installed (uv sync --no-group native)")
    native = AvroCodec(
        registry=registry,
        subject="sensor-readings-value",
        schema=load_schema(SENSOR_READING),
        to_avro=reading_to_avro,
        from_avro=reading_from_avro,
        from_values=lambda values: reading_of(ReadingRow._make(values)),
    )
    assert native.native
    return native


def header(schema_id: int) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big")


# --- wire format and round trips -------------------------------------------------------


async def test_encoded_reading_is_magic_byte_schema_id_and_avro_body(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    payload = await codec.encode(reading())

    [schema_id] = await registry.versions("sensor-readings-value")
    assert payload[:5] == header(schema_id)
    assert len(payload) > 5


async def test_schema_is_registered_once_under_the_topic_value_subject(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    for i in range(3):
        await codec.encode(reading(i))

    assert registry.registrations == 1
    assert len(await registry.versions("sensor-readings-value")) == 1


async def test_readings_round_trip(codec: AvroCodec[Reading]) -> None:
    readings = [reading(i) for i in range(10)]

    decoded = await codec.decode_many([await codec.encode(r) for r in readings])

    assert decoded == readings


async def test_rows_of_a_batch_share_their_equal_strings(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    # Two readings of one sensor: fastavro reads each string afresh, the rows keep one.
    readings = [reading(0), reading(50)]
    rows = await reading_row_codec(registry, "sensor-readings").decode_many(
        [await codec.encode(r) for r in readings]
    )

    assert rows == [row_of(r) for r in readings]
    first, second = rows
    assert not isinstance(first, DecodeError)
    assert not isinstance(second, DecodeError)
    for field in ("sensor_id", "sensor_type", "unit", "location"):
        assert getattr(first, field) is getattr(second, field), field


def test_row_reader_forgets_its_strings_once_it_holds_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mapping, "SHARED_STRINGS", 8)
    row = reading_row_reader()
    record = reading_to_avro(reading(0))
    record["timestamp"] = reading(0).timestamp
    remembered = row({**record, "sensor_id": "".join(("sensor-", "a"))}).sensor_id

    for i in range(8):  # new sensors fill it: it starts afresh
        row({**record, "sensor_id": f"sensor-{i}"})
    again = "".join(("sensor-", "a"))

    assert row({**record, "sensor_id": again}).sensor_id is again
    assert again == remembered


async def test_decoded_timestamps_are_utc_aware_and_exact_to_the_microsecond(
    codec: AvroCodec[Reading],
) -> None:
    original = reading(7)

    [decoded] = await codec.decode_many([await codec.encode(original)])

    assert isinstance(decoded, Reading)
    assert decoded.timestamp.tzinfo is UTC
    assert decoded.timestamp == original.timestamp
    assert decoded.timestamp.microsecond == original.timestamp.microsecond


EVENT_CASES: list[tuple[str, Callable[[InMemorySchemaRegistry], AvroCodec[Any]], list[Any]]] = [
    ("alert", lambda r: alert_codec(r, "alerts"), [alert(), bare_alert()]),
    ("shop", lambda r: shop_event_codec(r, "shop"), shop_events()),
    ("transaction", lambda r: transaction_codec(r, "payments"), [transaction(), transfer()]),
    ("account profile", lambda r: account_profile_codec(r, "accounts"), [account_profile()]),
    ("payment outcome", lambda r: payment_outcome_codec(r, "outcomes"), payment_outcomes()),
    ("post", lambda r: post_codec(r, "posts"), [post()]),
    ("engagement", lambda r: engagement_codec(r, "engagement"), [engagement()]),
]


@pytest.mark.parametrize(
    ("name", "make_codec", "events"), EVENT_CASES, ids=[case[0] for case in EVENT_CASES]
)
async def test_every_event_type_round_trips(
    name: str,
    make_codec: Callable[[InMemorySchemaRegistry], AvroCodec[Any]],
    events: list[Any],
) -> None:
    codec = make_codec(InMemorySchemaRegistry())

    decoded = await codec.decode_many([await codec.encode(event) for event in events])

    assert decoded == events, name


async def test_money_keeps_all_four_decimal_places() -> None:
    codec = transaction_codec(InMemorySchemaRegistry(), "payments")

    [decoded] = await codec.decode_many([await codec.encode(transaction())])

    assert not isinstance(decoded, DecodeError)
    assert decoded.amount == Decimal("12345678901234.5678")


async def test_event_that_does_not_fit_the_schema_fails_to_encode() -> None:
    codec = transaction_codec(InMemorySchemaRegistry(), "payments")
    too_precise = replace(transaction(), amount=Decimal("1.23456"))  # scale is 4

    with pytest.raises(MalformedPayload, match="Transaction"):
        await codec.encode(too_precise)


@pytest.mark.parametrize(
    ("name", "make_codec", "events"), EVENT_CASES, ids=[case[0] for case in EVENT_CASES]
)
async def test_encode_many_writes_the_bytes_plain_fastavro_writes_one_by_one(
    name: str,
    make_codec: Callable[[InMemorySchemaRegistry], AvroCodec[Any]],
    events: list[Any],
) -> None:
    # The batch path tags optional fields for fastavro: the wire bytes must not change.
    codec = make_codec(InMemorySchemaRegistry())
    schema = fastavro.parse_schema(json.loads(codec._text))

    encoded = await codec.encode_many(events)

    plain = []
    for event in events:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, schema, codec._to_avro(event))
        plain.append(encoded[0][:5] + body.getvalue())
    assert encoded == plain, name
    assert await codec.decode_many(encoded) == events


OPTIONAL = {
    "type": "record",
    "name": "Optional",
    "namespace": "test",
    "fields": [
        {"name": "count", "type": ["null", "int"], "default": None},
        {"name": "label", "type": ["string", "null"], "default": "x"},
        {
            "name": "price",
            "type": [
                "null",
                {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
            ],
            "default": None,
        },
        {"name": "kind", "type": ["null", {"type": "enum", "name": "Kind", "symbols": ["a"]}]},
    ],
}


def optional_codec() -> AvroCodec[dict[str, Any]]:
    return AvroCodec(
        registry=InMemorySchemaRegistry(),
        subject="optional-value",
        schema=OPTIONAL,
        to_avro=lambda record: record,
        from_avro=lambda record: record,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"count": 2**40},  # beyond 32 bits
        {"label": 5},  # not a string
        {"price": Decimal("1234567.5")},  # more digits than the precision
        {"price": Decimal("1.234")},  # more decimal places than the scale
        {"price": "1.00"},  # not a decimal
        {"kind": "b"},  # not a symbol
    ],
)
async def test_optional_field_that_does_not_fit_fails_to_encode_in_a_batch(
    bad: dict[str, Any],
) -> None:
    codec = optional_codec()
    good = {"count": 1, "label": None, "price": Decimal("1.50"), "kind": "a"}

    assert await codec.decode_many(await codec.encode_many([good, good])) == [good, good]
    with pytest.raises(MalformedPayload, match="does not fit"):
        await codec.encode_many([good, {**good, **bad}])


# --- bad payloads: each yields its DecodeError in its slot -----------------------------


async def test_missing_value_yields_missing_value(codec: AvroCodec[Reading]) -> None:
    assert isinstance((await codec.decode_many([None]))[0], MissingValue)


@pytest.mark.parametrize(
    "payload", [b"", b"\x00", b"\x00\x00\x00\x01", b"\x01\x00\x00\x00\x01body", b"{json}"]
)
async def test_short_or_non_magic_payload_yields_bad_magic_byte(
    codec: AvroCodec[Reading], payload: bytes
) -> None:
    assert isinstance((await codec.decode_many([payload]))[0], BadMagicByte)


async def test_unknown_schema_id_yields_unknown_schema_id(codec: AvroCodec[Reading]) -> None:
    [result] = await codec.decode_many([header(424242) + b"\x02a"])

    assert isinstance(result, UnknownSchemaId)
    assert "424242" in str(result)


async def test_unknown_schema_id_is_asked_once_per_batch_and_remembered(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    await codec.decode_many([header(424242) + b"\x02a"] * 5)
    await codec.decode_many([header(424242) + b"\x02a"] * 5)

    assert registry.lookups == 1


async def test_a_registry_failure_propagates_for_the_batch_to_be_retried(
    codec: AvroCodec[Reading], registry: CountingRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = await codec.encode(reading())

    async def unreachable(schema_id: int) -> str:
        raise TransientError("the registry does not answer")

    monkeypatch.setattr(registry, "schema", unreachable)

    with pytest.raises(TransientError):
        await codec.decode_many([good, header(424242) + b"\x02a"])


async def test_truncated_body_yields_malformed_payload(codec: AvroCodec[Reading]) -> None:
    payload = await codec.encode(reading())

    results = await codec.decode_many([payload[:n] for n in range(5, len(payload))])

    assert all(isinstance(result, MalformedPayload) for result in results)


async def test_trailing_bytes_yield_malformed_payload(codec: AvroCodec[Reading]) -> None:
    payload = await codec.encode(reading())

    [result] = await codec.decode_many([payload + b"\x00"])

    assert isinstance(result, MalformedPayload)
    assert "left after the record" in str(result)


async def test_invalid_utf8_yields_malformed_payload(codec: AvroCodec[Reading]) -> None:
    payload = await codec.encode(reading(sensor_id="ab"))
    corrupt = payload.replace(b"\x04ab", b"\x04\xff\xfe", 1)

    [result] = await codec.decode_many([corrupt])

    assert isinstance(result, MalformedPayload)


async def test_record_of_another_schema_yields_malformed_payload(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    posts = post_codec(registry, "posts")
    payload = await posts.encode(post())

    [result] = await codec.decode_many([payload])

    assert isinstance(result, MalformedPayload)
    assert "cannot be read" in str(result)


async def test_record_the_mapping_rejects_yields_malformed_payload(
    registry: CountingRegistry,
) -> None:
    def refuse(record: dict[str, Any]) -> Reading:
        raise KeyError("sensor_id")

    codec = AvroCodec(
        registry=registry,
        subject="strict-value",
        schema=load_schema(SENSOR_READING),
        to_avro=reading_to_avro,
        from_avro=refuse,
    )

    [result] = await codec.decode_many([await codec.encode(reading())])

    assert isinstance(result, MalformedPayload)


async def test_bytearray_and_memoryview_values_decode_like_bytes(
    codec: AvroCodec[Reading],
) -> None:
    payload = await codec.encode(reading(4))

    results = await codec.decode_many([bytearray(payload), memoryview(payload)])  # type: ignore[list-item]

    assert results == [reading(4), reading(4)]


async def test_value_that_is_not_bytes_yields_malformed_payload(
    codec: AvroCodec[Reading],
) -> None:
    [result] = await codec.decode_many(["\x00\x00\x00\x00\x01"])  # type: ignore[list-item]

    assert isinstance(result, MalformedPayload)


async def test_bad_payloads_do_not_disturb_the_good_ones_around_them(
    codec: AvroCodec[Reading],
) -> None:
    good = [await codec.encode(reading(i)) for i in range(3)]
    batch = [good[0], None, b"\x07junk", good[1], good[2][:-2], good[2]]

    results = await codec.decode_many(batch)

    assert [type(r).__name__ for r in results] == [
        "Reading",
        "MissingValue",
        "BadMagicByte",
        "Reading",
        "MalformedPayload",
        "Reading",
    ]
    assert results[5] == reading(2)


# --- schema evolution ------------------------------------------------------------------


def v2_codec(registry: InMemorySchemaRegistry) -> AvroCodec[dict[str, Any]]:
    """A codec of the next version of readings, seeing records as dicts."""
    return AvroCodec(
        registry=registry,
        subject="sensor-readings-value",
        schema=reading_schema_v2(),
        to_avro=lambda record: record,
        from_avro=lambda record: record,
    )


async def test_v2_reader_reads_v1_records_with_the_new_field_defaulted(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    v1_payload = await codec.encode(reading(1))

    [decoded] = await v2_codec(registry).decode_many([v1_payload])

    assert isinstance(decoded, dict)
    assert decoded["firmware"] is None
    assert reading_from_avro(decoded) == reading(1)


async def test_v1_reader_reads_v2_records_ignoring_the_new_field(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    await codec.encode(reading(0))  # v1 registered first, as in production
    newer = v2_codec(registry)
    v2_payload = await newer.encode({**reading_to_avro(reading(2)), "firmware": "2.1.0"})

    [decoded] = await codec.decode_many([v2_payload])

    assert decoded == reading(2)
    assert v2_payload[:5] != (await codec.encode(reading(0)))[:5]  # a new schema id


async def test_writer_schema_is_fetched_once_per_id(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    newer = v2_codec(registry)
    payloads = [
        await newer.encode(reading_to_avro(reading(i)) | {"firmware": "x"}) for i in range(5)
    ]

    await codec.decode_many(payloads)
    await codec.decode_many(payloads)

    assert registry.lookups == 1


async def test_codec_reads_its_own_schema_without_asking_the_registry(
    codec: AvroCodec[Reading], registry: CountingRegistry
) -> None:
    payloads = [await codec.encode(reading(i)) for i in range(3)]

    await codec.decode_many(payloads)

    assert registry.lookups == 0


async def test_codec_of_another_process_fetches_the_schema_once(
    registry: CountingRegistry,
) -> None:
    writer = reading_codec(registry, "sensor-readings")
    payloads = [await writer.encode(reading(i)) for i in range(4)]
    reader = reading_codec(registry, "sensor-readings")

    decoded = await reader.decode_many(payloads)

    assert decoded == [reading(i) for i in range(4)]
    assert registry.lookups == 1
