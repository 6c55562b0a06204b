"""The schema registry over HTTP: Confluent Schema Registry or a compatible API (Apicurio's
`/apis/ccompat/v7`), through confluent-kafka's SchemaRegistryClient."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from pipeline.application.errors import (
    ConfigurationError,
    IncompatibleSchema,
    RegistryUnavailable,
    SchemaRegistryError,
    UnknownSchemaId,
)

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry import SchemaRegistryError as ClientError

R = TypeVar("R")

_RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class ConfluentSchemaRegistry:
    """A Confluent-compatible schema registry reached over HTTP.

    Wraps confluent-kafka's synchronous `SchemaRegistryClient`, each call run in a worker
    thread. Schemas fetched by id are cached here (ids are immutable), so decoding a known
    id never leaves the event loop. Client errors are translated: HTTP 409 →
    IncompatibleSchema, unknown id → UnknownSchemaId, unreachable or 5xx after the client's
    retries → RegistryUnavailable, anything else the registry refuses → SchemaRegistryError.

    The client is built in a thread of its own, started here, and waited for by the first
    call: importing it (httpx2, authlib, cryptography) takes about 0.3 s of CPU, which a
    worker's start then spends while it waits for the broker and the database rather than
    before. An invalid configuration (a URL without a scheme, basic auth without a colon)
    is a ConfigurationError raised by the first call.
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
        self._url = url
        self._schemas: dict[int, str] = {}
        self._client: Future[SchemaRegistryClient] = Future()
        threading.Thread(
            target=_build, args=(config, self._client), name="schema-registry", daemon=True
        ).start()

    async def register(self, subject: str, schema: str) -> int:
        """Register `schema` under `subject` (idempotent) and return its global id;
        raise IncompatibleSchema if it breaks the subject's compatibility level."""
        from confluent_kafka.schema_registry import Schema  # noqa: PLC0415 - loaded by _build

        schema_id: int = await self._call(
            f"register a schema under {subject!r}",
            lambda client: client.register_schema(subject, Schema(schema, "AVRO")),
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
                f"fetch schema id {schema_id}", lambda client: client.get_schema(schema_id)
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
            lambda client: client.set_compatibility(subject, level.upper()),
        )

    async def compatibility(self, subject: str) -> str:
        """The subject's compatibility level (the registry default if none is set)."""
        try:
            level: str = await self._call(
                f"read the compatibility of {subject!r}",
                lambda client: client.get_compatibility(subject),
            )
        except SchemaRegistryError as exc:
            if _status(exc) != 404:
                raise
            level = await self._call(
                "read the global compatibility", lambda client: client.get_compatibility()
            )
        return level.upper()

    async def close(self) -> None:
        """Close the client's HTTP connections."""
        try:
            client = await asyncio.wrap_future(self._client)
        except ConfigurationError:
            return
        await asyncio.to_thread(client.close)

    async def _call(self, what: str, function: Callable[[SchemaRegistryClient], R]) -> R:
        client = await asyncio.wrap_future(self._client)
        # Loaded with the client. httpx is the module the client itself takes httpx (or its
        # successor httpx2) from: its transport errors are the ones the client lets through.
        from confluent_kafka.schema_registry import (  # noqa: PLC0415
            SchemaRegistryError as ClientError,
        )
        from confluent_kafka.schema_registry.common._httpx_compat import httpx  # noqa: PLC0415

        try:
            return await asyncio.to_thread(function, client)
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


def _build(config: dict[str, Any], client: Future[SchemaRegistryClient]) -> None:
    """Thread: import confluent-kafka's client and build it into `client`."""
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

        client.set_result(SchemaRegistryClient(config))
    except (ValueError, TypeError) as exc:
        error = ConfigurationError(f"schema registry client: {exc}")
        error.__cause__ = exc
        client.set_exception(error)
    except Exception as exc:  # noqa: BLE001 - not swallowed: the first call raises it
        client.set_exception(exc)


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
    from confluent_kafka.schema_registry import (  # noqa: PLC0415 - loaded with the client
        SchemaRegistryError as ClientError,
    )

    cause = exc.__cause__
    return cause.http_status_code if isinstance(cause, ClientError) else None
