"""The schema registry over HTTP: Confluent Schema Registry or a compatible API (Apicurio's
`/apis/ccompat/v7`), through confluent-kafka's SchemaRegistryClient."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pipeline.application.errors import (
    ConfigurationError,
    IncompatibleSchema,
    RegistryUnavailable,
    SchemaRegistryError,
    UnknownSchemaId,
)

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

R = TypeVar("R")

_RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class ConfluentSchemaRegistry:
    """A Confluent-compatible schema registry reached over HTTP.

    Wraps confluent-kafka's synchronous `SchemaRegistryClient`, each call run in a worker
    thread. The client (with the OAuth and HTTP libraries it imports, ~0.12 s of a worker's
    start) is made by the first call, in that thread; the URL and the credentials are
    checked here. Schemas fetched by id are cached here (ids are immutable), so decoding a
    known id never leaves the event loop. Client errors are translated: HTTP 409 →
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
        for base in url.split(","):
            if urlsplit(base.strip()).scheme not in ("http", "https"):
                raise ConfigurationError(
                    f"schema registry client: {base.strip()!r} is not an http(s) URL"
                )
        if basic_auth is not None and ":" not in basic_auth:
            raise ConfigurationError(
                "schema registry client: basic auth must be given as user:password"
            )
        self._config: dict[str, Any] = {
            "url": url,
            "timeout": timeout,
            "max.retries": max_retries,
            "retries.wait.ms": retries_wait_ms,
        }
        if basic_auth:
            self._config["basic.auth.user.info"] = basic_auth
        self._made: SchemaRegistryClient | None = None
        self._making = threading.Lock()
        self._url = url
        self._schemas: dict[int, str] = {}

    def _client(self) -> SchemaRegistryClient:
        """The client, made on first use (in a worker thread, as every call)."""
        with self._making:
            if self._made is None:
                from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

                try:
                    self._made = SchemaRegistryClient(self._config)
                except (ValueError, TypeError) as exc:
                    raise ConfigurationError(f"schema registry client: {exc}") from exc
            return self._made

    async def register(self, subject: str, schema: str) -> int:
        """Register `schema` under `subject` (idempotent) and return its global id;
        raise IncompatibleSchema if it breaks the subject's compatibility level."""
        schema_id: int = await self._call(
            f"register a schema under {subject!r}",
            lambda: self._client().register_schema(subject, _avro(schema)),
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
                f"fetch schema id {schema_id}", lambda: self._client().get_schema(schema_id)
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
            lambda: self._client().set_compatibility(subject, level.upper()),
        )

    async def compatibility(self, subject: str) -> str:
        """The subject's compatibility level (the registry default if none is set)."""
        try:
            level: str = await self._call(
                f"read the compatibility of {subject!r}",
                lambda: self._client().get_compatibility(subject),
            )
        except SchemaRegistryError as exc:
            if _status(exc) != 404:
                raise
            level = await self._call(
                "read the global compatibility", lambda: self._client().get_compatibility()
            )
        return level.upper()

    async def close(self) -> None:
        """Close the client's HTTP connections."""
        if self._made is not None:
            await asyncio.to_thread(self._made.close)

    async def _call(self, what: str, function: Callable[[], R]) -> R:
        try:
            return await asyncio.to_thread(function)
        except ConfigurationError:
            raise
        except Exception as exc:
            translated = _translated(what, self._url, exc)
            if translated is exc:
                raise
            raise translated from exc


def _avro(schema: str) -> Any:
    from confluent_kafka.schema_registry import Schema  # noqa: PLC0415

    return Schema(schema, "AVRO")


def _translated(what: str, url: str, exc: Exception) -> Exception:
    """What the client raised, as the port's errors: HTTP 409 → IncompatibleSchema,
    unreachable or 5xx after the client's retries → RegistryUnavailable, anything else the
    registry refuses or answers → SchemaRegistryError; anything else as it was."""
    # Imported here, as the client (see `ConfluentSchemaRegistry`). The httpx module is the
    # one the client itself takes httpx (or its successor httpx2) from: its transport errors
    # are the ones the client lets through.
    from confluent_kafka.schema_registry import SchemaRegistryError as ClientError  # noqa: PLC0415
    from confluent_kafka.schema_registry.common._httpx_compat import httpx  # noqa: PLC0415

    if isinstance(exc, ClientError):
        status = exc.http_status_code
        message = f"schema registry refused to {what}: {exc.error_message} (HTTP {status}, "
        message += f"code {exc.error_code})"
        if status == 409:
            return IncompatibleSchema(message)
        if status in _RETRIABLE_STATUS:
            return RegistryUnavailable(message)
        return SchemaRegistryError(message)
    if isinstance(exc, httpx.TransportError):
        return RegistryUnavailable(f"schema registry at {url} unreachable ({what}): {exc!r}")
    if isinstance(exc, httpx.HTTPError | ValueError | KeyError | TypeError):
        # A body that is not the JSON the API promises (a proxy's HTML error page, …).
        return SchemaRegistryError(f"unexpected answer from the schema registry ({what}): {exc!r}")
    return exc


def _status(exc: SchemaRegistryError) -> int | None:
    """The HTTP status of the client error behind `exc`, if any."""
    return getattr(exc.__cause__, "http_status_code", None)
