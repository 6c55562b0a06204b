"""The codec of hashtag uses (schema `io.pipeline.social.HashtagUse`): what the `social-tags`
job writes, keyed by tag, and the `social` job counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.adapters.avro.codec import AvroCodec, value_subject
from pipeline.adapters.avro.schemas import load_schema
from pipeline.application.ports import SchemaRegistry
from pipeline.domain.social import HashtagUse
from pipeline.domain.time import to_epoch_micros

HASHTAG_USE = "hashtag_use.v1.avsc"


def hashtag_use_to_avro(use: HashtagUse) -> dict[str, Any]:
    """The `HashtagUse` record of `use`."""
    return {
        "tag": use.tag,
        "post_id": use.post_id,
        "author": use.author,
        "timestamp": to_epoch_micros(use.timestamp),
    }


def hashtag_use_from_avro(record: Mapping[str, Any]) -> HashtagUse:
    """The use in a `HashtagUse` record."""
    timestamp: datetime = record["timestamp"]
    return HashtagUse(
        tag=record["tag"],
        post_id=record["post_id"],
        author=record["author"],
        timestamp=timestamp.astimezone(UTC),
    )


def hashtag_use_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[HashtagUse]:
    """The codec of hashtag uses on `topic`."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(HASHTAG_USE),
        to_avro=hashtag_use_to_avro,
        from_avro=hashtag_use_from_avro,
    )
