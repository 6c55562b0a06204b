"""Schemas by subject and id, and the codecs that turn events into wire bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, runtime_checkable

from pipeline.application.errors import DecodeError

T = TypeVar("T")


@runtime_checkable
class SchemaRegistry(Protocol):
    """Versioned schemas by subject, with global ids (Confluent-compatible)."""

    async def register(self, subject: str, schema: str) -> int:
        """Register `schema` under `subject` (idempotent) and return its global id;
        raise IncompatibleSchema if it breaks the subject's compatibility level."""
        ...

    async def schema(self, schema_id: int) -> str:
        """The schema text with id `schema_id`; raise UnknownSchemaId if there is none."""
        ...

    async def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level (BACKWARD, FORWARD, FULL, NONE, …)."""
        ...

    async def compatibility(self, subject: str) -> str:
        """The subject's compatibility level (the registry default if none is set)."""
        ...


class Codec(Protocol[T]):
    """Turns events into wire bytes and back."""

    async def encode(self, event: T) -> bytes:
        """The wire bytes of `event`."""
        ...

    async def decode_many(self, payloads: Sequence[bytes | None]) -> list[T | DecodeError]:
        """Decode each payload; a payload that cannot be decoded yields its DecodeError
        in its place instead of failing the batch."""
        ...
