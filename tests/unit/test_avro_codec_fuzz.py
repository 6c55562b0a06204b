"""Property: whatever bytes arrive, decode_many answers every slot with an event or a
DecodeError, and never raises."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.adapters.avro import AvroCodec, post_codec, reading_codec, shop_event_codec
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.application.errors import DecodeError, MalformedPayload
from pipeline.domain.sensors import Reading
from pipeline.domain.shop import ShopEvent
from tests.avro_events import post, reading, shop_events

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def prepared() -> tuple[AvroCodec[Reading], AvroCodec[ShopEvent], list[bytes], bytes]:
    """Codecs sharing one registry, valid payloads of theirs, and the reading header."""

    async def build() -> tuple[AvroCodec[Reading], AvroCodec[ShopEvent], list[bytes], bytes]:
        registry = InMemorySchemaRegistry()
        readings = reading_codec(registry, "fuzz-readings")
        shop = shop_event_codec(registry, "fuzz-shop")
        valid = [await readings.encode(reading(i)) for i in range(3)]
        valid += [await shop.encode(event) for event in shop_events()]
        valid.append(await post_codec(registry, "fuzz-posts").encode(post()))
        return readings, shop, valid, valid[0][:5]

    return asyncio.run(build())


READINGS, SHOP, VALID, READING_HEADER = prepared()


def decode(codec: AvroCodec[Any], payloads: list[bytes | None]) -> list[Any]:
    results = asyncio.run(codec.decode_many(payloads))
    assert len(results) == len(payloads)
    return results


def assert_every_slot_answered(results: list[Any], event_type: type) -> None:
    for result in results:
        assert isinstance(result, event_type | DecodeError), repr(result)


@FUZZ
@given(st.lists(st.one_of(st.none(), st.binary(max_size=80)), max_size=12))
def test_random_bytes_never_raise(payloads: list[bytes | None]) -> None:
    assert_every_slot_answered(decode(READINGS, payloads), Reading)


@FUZZ
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=12))
def test_random_bodies_behind_a_known_schema_id_never_raise(bodies: list[bytes]) -> None:
    payloads: list[bytes | None] = [READING_HEADER + body for body in bodies]

    assert_every_slot_answered(decode(READINGS, payloads), Reading)
    assert_every_slot_answered(decode(SHOP, payloads), ShopEvent)


@FUZZ
@given(st.data())
def test_truncated_or_corrupted_valid_payloads_never_raise(data: st.DataObject) -> None:
    payload = bytearray(data.draw(st.sampled_from(VALID)))
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    for _ in range(data.draw(st.integers(min_value=0, max_value=4))):
        where = data.draw(st.integers(min_value=5, max_value=len(payload) - 1))
        payload[where] = data.draw(st.integers(min_value=0, max_value=255))
    candidate = bytes(payload[:cut])

    assert_every_slot_answered(decode(READINGS, [candidate]), Reading)
    assert_every_slot_answered(decode(SHOP, [candidate]), ShopEvent)


@FUZZ
@given(st.integers(min_value=6, max_value=40), st.binary(min_size=1, max_size=8))
def test_huge_lengths_and_counts_are_malformed_not_fatal(cut: int, tail: bytes) -> None:
    # A varint of 0xff… announces a string, array or bytes far longer than the payload.
    payload = VALID[3][:cut] + b"\xff" * 9 + b"\x7f" + tail

    [result] = decode(SHOP, [payload])

    assert isinstance(result, ShopEvent | MalformedPayload)
