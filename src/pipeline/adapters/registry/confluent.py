"""The schema registry over HTTP: Confluent Schema Registry or a compatible API (Apicurio's
`/apis/ccompat/v7`), through confluent-kafka's SchemaRegistryClient."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry import SchemaRegistryError as ClientError

# The module the client itself takes httpx (or its successor httpx2) from: its transport
# errors are the ones the client lets through.
from confluent_kafka.schema_registry.common._httpx_compat import httpx

from pipeline.application.errors import (
    ConfigurationError,
    IncompatibleSchema,
    RegistryUnavailable,
    SchemaRegistryError,
    UnknownSchemaId,
)

R = TypeVar("R")

_RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class ConfluentSchemaRegistry:
    """A Confluent-compatible schema registry reached over HTTP.

    Wraps confluent-kafka's synchronous `SchemaRegistryClient`, each call run in a worker
    thread. Schemas fetched by id are cached here (ids are immutable), so decoding a known
    id never leaves the event loop. Client errors are translated: HTTP 409 →
    IncompatibleSchema, unknown id → UnknownSchemaId, unreachable or 5xx after the client's
    retries → RegistryUnavailable, anything else the registry refuses → SchemaRegistryError.
    """

    def __init__(
        self,
        url: str,
        *,
        basic_auth: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 2,
        retries_wait_ms: int = 200,
    ) -> None:
        """`url`: base URL (comma-separated for several); `basic_auth`:
        "user:password" for HTTP basic auth, or None."""
        config: dict[str, Any] = {
            "url": url,
            "timeout": timeout,
            "max.retries": max_retries,
            "retries.wait.ms": retries_wait_ms,
        }
        if basic_auth:
            config["basic.auth.user.info"] = basic_auth
        try:
            self._client = SchemaRegistryClient(config)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"schema registry client: {exc}") from exc
        self._url = url
        self._schemas: dict[int, str] = {}

    async def register(self, subject: str, schema: str) -> int:
        """Register `schema` under `subject` (idempotent) and return its global id;
        raise IncompatibleSchema if it breaks the subject's compatibility level."""
        schema_id: int = await self._call(
            f"register a schema under {subject!r}",
            self._client.register_schema,
            subject,
            Schema(schema, "AVRO"),
        )
        self._schemas.setdefault(schema_id, schema)
        return schema_id

    async def schema(self, schema_id: int) -> str:
        """The schema text with id `schema_id`; raise UnknownSchemaId if there is none."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        try:
            found = await self._call(
                f"fetch schema id {schema_id}", self._client.get_schema, schema_id
            )
        except SchemaRegistryError as exc:
            if _status(exc) == 404:
                raise UnknownSchemaId(f"the registry knows no schema id {schema_id}") from exc
            raise
        text = found.schema_str
        if text is None:
            raise UnknownSchemaId(f"the registry returned no schema text for id {schema_id}")
        self._schemas[schema_id] = text
        return text

    async def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level (BACKWARD, FORWARD, FULL, NONE, …)."""
        await self._call(
            f"set the compatibility of {subject!r}",
            self._client.set_compatibility,
            subject,
            level.upper(),
        )

    async def compatibility(self, subject: str) -> str:
        """The subject's compatibility level (the registry default if none is set)."""
        try:
            level: str = await self._call(
                f"read the compatibility of {subject!r}", self._client.get_compatibility, subject
            )
        except SchemaRegistryError as exc:
            if _status(exc) != 404:
                raise
            level = await self._call(
                "read the global compatibility", self._client.get_compatibility
            )
        return level.upper()

    async def close(self) -> None:
        """Close the client's HTTP connections."""
        await asyncio.to_thread(self._client.close)

    async def _call(self, what: str, function: Callable[..., R], *args: Any) -> R:
        try:
            return await asyncio.to_thread(function, *args)
        except ClientError as exc:
            raise _translate(what, exc) from exc
        except httpx.TransportError as exc:
            raise RegistryUnavailable(
                f"schema registry at {self._url} unreachable ({what}): {exc!r}"
            ) from exc
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            # A body that is not the JSON the API promises (a proxy's HTML error page, …).
            raise SchemaRegistryError(
                f"unexpected answer from the schema registry ({what}): {exc!r}"
            ) from exc


def _translate(what: str, exc: ClientError) -> SchemaRegistryError | RegistryUnavailable:
    status = exc.http_status_code
    message = f"schema registry refused to {what}: {exc.error_message} (HTTP {status}, code "
    message += f"{exc.error_code})"
    if status == 409:
        return IncompatibleSchema(message)
    if status in _RETRIABLE_STATUS:
        return RegistryUnavailable(message)
    return SchemaRegistryError(message)


def _status(exc: SchemaRegistryError) -> int | None:
    """The HTTP status of the client error behind `exc`, if any."""
    cause = exc.__cause__
    return cause.http_status_code if isinstance(cause, ClientError) else None
