"""Property: whatever bytes arrive, decode_many never raises and answers every slot as the
wire format says: no value → MissingValue; no 5-byte header or another magic byte →
BadMagicByte; an id the registry does not know → UnknownSchemaId; a schema the codec cannot
read, or a body that is not a record of it → MalformedPayload; otherwise the event, which the
codec writes and reads back unchanged. The readings are also decoded by the sensors codec's
compiled core (`ROWS`), which must answer alike."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.adapters.avro import (
    AvroCodec,
    post_codec,
    reading_codec,
    reading_row_codec,
    shop_event_codec,
)
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.application.errors import (
    BadMagicByte,
    DecodeError,
    MalformedPayload,
    MissingValue,
    UnknownSchemaId,
)
from pipeline.domain.sensor_columns import ReadingRow
from pipeline.domain.sensors import Reading
from pipeline.domain.shop import ShopEvent
from tests.avro_events import post, reading, shop_events

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


Prepared = tuple[
    AvroCodec[Reading], AvroCodec[ReadingRow], AvroCodec[ShopEvent], list[bytes], set[int]
]


def prepared() -> Prepared:
    """Codecs sharing one registry, valid payloads of theirs, and the registered ids."""

    async def build() -> Prepared:
        registry = InMemorySchemaRegistry()
        readings = reading_codec(registry, "fuzz-readings")
        rows = reading_row_codec(registry, "fuzz-readings")  # the compiled core, if installed
        shop = shop_event_codec(registry, "fuzz-shop")
        posts = post_codec(registry, "fuzz-posts")
        valid = [await readings.encode(reading(i)) for i in range(3)]
        valid += [await shop.encode(event) for event in shop_events()]
        valid.append(await posts.encode(post()))
        ids = {await codec.schema_id() for codec in (readings, shop, posts)}
        assert await rows.schema_id() in ids
        return readings, rows, shop, valid, ids

    return asyncio.run(build())


READINGS, ROWS, SHOP, VALID, REGISTERED = prepared()
READING_HEADER = VALID[0][:5]


def decode(codec: AvroCodec[Any], payloads: list[bytes | None]) -> list[Any]:
    results = asyncio.run(codec.decode_many(payloads))
    assert len(results) == len(payloads)
    return results


def expected_error(codec: AvroCodec[Any], payload: bytes | None) -> type[DecodeError] | None:
    """The exact error the payload's header calls for; None when only its body can tell."""
    if payload is None:
        return MissingValue
    if len(payload) < 5 or payload[0] != 0:
        return BadMagicByte
    schema_id = int.from_bytes(payload[1:5], "big")
    if schema_id not in REGISTERED:
        return UnknownSchemaId
    # The three schemas are unrelated records: none can be read as another.
    if schema_id != asyncio.run(codec.schema_id()):
        return MalformedPayload
    return None


def assert_answered_as_specified(codec: AvroCodec[Any], payloads: list[bytes | None]) -> None:
    for payload, result in zip(payloads, decode(codec, payloads), strict=True):
        expected = expected_error(codec, payload)
        if expected is not None:
            assert type(result) is expected, (payload, result)
        elif isinstance(result, DecodeError):
            assert type(result) is MalformedPayload, (payload, result)
        else:
            # An event: written again and read back, it is the same event.
            written = asyncio.run(codec.encode(result))
            [again] = decode(codec, [written])
            assert asyncio.run(codec.encode(again)) == written


@FUZZ
@given(st.lists(st.one_of(st.none(), st.binary(max_size=80)), max_size=12))
def test_random_bytes_are_answered_by_their_header(payloads: list[bytes | None]) -> None:
    assert_answered_as_specified(READINGS, payloads)
    assert_answered_as_specified(ROWS, payloads)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*sorted(REGISTERED), max(REGISTERED) + 1]), st.binary(max_size=120)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_random_bodies_behind_a_wire_format_header_are_events_or_malformed(
    bodies: list[tuple[int, bytes]],
) -> None:
    payloads: list[bytes | None] = [b"\0" + i.to_bytes(4, "big") + body for i, body in bodies]

    assert_answered_as_specified(READINGS, payloads)
    assert_answered_as_specified(ROWS, payloads)
    assert_answered_as_specified(SHOP, payloads)


@FUZZ
@given(st.data())
def test_a_truncated_valid_payload_is_malformed_and_a_whole_one_its_event(
    data: st.DataObject,
) -> None:
    payload = data.draw(st.sampled_from(VALID[:3]))
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))

    [result] = decode(READINGS, [payload[:cut]])

    if cut == len(payload):
        assert result == decode(READINGS, [payload])[0] == reading(VALID.index(payload))
    elif cut < 5:
        assert type(result) is BadMagicByte
    else:
        assert type(result) is MalformedPayload


@FUZZ
@given(st.data())
def test_corrupted_valid_payloads_are_answered_as_specified(data: st.DataObject) -> None:
    payload = bytearray(data.draw(st.sampled_from(VALID)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        where = data.draw(st.integers(min_value=5, max_value=len(payload) - 1))
        payload[where] = data.draw(st.integers(min_value=0, max_value=255))

    assert_answered_as_specified(READINGS, [bytes(payload)])
    assert_answered_as_specified(ROWS, [bytes(payload)])
    assert_answered_as_specified(SHOP, [bytes(payload)])


@FUZZ
@given(st.integers(min_value=6, max_value=40), st.binary(min_size=1, max_size=8))
def test_huge_lengths_and_counts_are_malformed_not_fatal(cut: int, tail: bytes) -> None:
    # A varint of 0xff… announces a string, array or bytes far longer than the payload.
    payload = VALID[3][:cut] + b"\xff" * 9 + b"\x7f" + tail

    [result] = decode(SHOP, [payload])

    assert type(result) is MalformedPayload
