"""Events ↔ Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import fastavro

from pipeline.adapters.avro.compatibility import read_problem
from pipeline.adapters.avro.schemas import AvroSchema, canonical_form, parse, schema_text
from pipeline.application.errors import (
    BadMagicByte,
    DecodeError,
    MalformedPayload,
    MissingValue,
    SchemaRegistryError,
    UnknownSchemaId,
)
from pipeline.application.ports import SchemaRegistry

if TYPE_CHECKING:
    from pipeline_native import RecordDecoder

T = TypeVar("T")

MAGIC_BYTE = 0
HEADER_SIZE = 5
_MAX_UNKNOWN_IDS = 1024


def value_subject(topic: str) -> str:
    """The subject of a topic's record values under Confluent's TopicNameStrategy."""
    return f"{topic}-value"


@dataclass(frozen=True, slots=True)
class _WriterPlan:
    """How to read bodies written with one schema id."""

    writer: dict[str, Any] | None
    """The parsed writer schema; None if records of this id cannot be read."""
    reader: dict[str, Any] | None = None
    """The reader schema when it differs from the writer's (schema resolution), else None."""
    problem: str = ""
    """Why records of this id cannot be read."""


class AvroCodec(Generic[T]):
    """Encodes events of type T as Confluent wire-format Avro and decodes them back.

    `schema` is the reader schema, also the schema every `encode` writes with; it is
    registered under `subject` on the first `encode`. Records written with another schema
    id are read by Avro schema resolution (writer = the registered schema of that id,
    reader = `schema`), so older and newer versions of the event decode alike. Writer
    schemas are fetched from `registry` once per id and cached; ids the registry does not
    know are remembered for `unknown_id_ttl` seconds, so garbage does not hammer it.

    Given `from_values`, records written with the codec's own schema are decoded by the
    compiled core (`pipeline_native`, Rust: apache-avro) into the tuple of their field
    values, in schema order, which `from_values` turns into a T — when the core is
    installed and reads every field type of the schema (a flat record of null, boolean,
    int, long, double, string, timestamp-millis/-micros and unions of these). Everything
    else (other schema ids, schema resolution, other schemas) is read by fastavro and
    `from_avro`, as without `from_values`. Both paths give the same values (proven by
    property tests) and the same DecodeErrors per slot.
    """

    def __init__(
        self,
        *,
        registry: SchemaRegistry,
        subject: str,
        schema: str | AvroSchema,
        to_avro: Callable[[T], Mapping[str, Any]],
        from_avro: Callable[[dict[str, Any]], T],
        from_values: Callable[[tuple[Any, ...]], T] | None = None,
        unknown_id_ttl: float = 60.0,
    ) -> None:
        self._registry = registry
        self._subject = subject
        self._text = schema_text(schema)
        self._parsed = parse(self._text)
        # Docs change no byte on the wire (and Apicurio ignores them when matching schemas).
        self._encoding = canonical_form(self._text, docs=False)
        self._to_avro = to_avro
        self._from_avro = from_avro
        self._unknown_id_ttl = unknown_id_ttl
        self._schema_id: int | None = None
        self._header = b""
        self._plans: dict[bytes, _WriterPlan] = {}  # by wire-format header
        self._unknown_until: dict[int, float] = {}
        self._tagged = _tagged_optional_fields(self._parsed)
        self._from_values = from_values
        self._native = _native_decoder(self._text) if from_values else None
        self._native_headers: list[bytes] = []  # headers of ids written with our schema

    @property
    def native(self) -> bool:
        """Whether records of the codec's own schema are decoded by the compiled core."""
        return self._native is not None

    @property
    def subject(self) -> str:
        """The registry subject the codec's schema is registered under."""
        return self._subject

    async def schema_id(self) -> int:
        """The registry id of the codec's schema, registering it on first use."""
        if self._schema_id is None:
            schema_id = await self._registry.register(self._subject, self._text)
            self._header = bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big")
            self._remember(self._header, _WriterPlan(self._parsed))
            self._schema_id = schema_id
        return self._schema_id

    async def encode(self, event: T) -> bytes:
        """The wire bytes of `event`. Raises MalformedPayload if the event does not fit
        the schema (a decimal with too many digits, an int beyond 32 bits, a naive time)."""
        return (await self.encode_many((event,)))[0]

    async def encode_many(self, events: Iterable[T]) -> list[bytes]:
        """The wire bytes of each of `events`, in order. Raises MalformedPayload for the
        first event that does not fit the schema (see `encode`)."""
        if self._schema_id is None:
            await self.schema_id()
        # The hot loop of a producer: a top-level optional field's value goes to fastavro
        # tagged with its branch (its tuple notation), so fastavro writes it without first
        # validating it against every branch of the union (a third of the time of a shop
        # event); only branches whose writer refuses a value of the wrong type are tagged.
        header, schema, to_avro, tagged = self._header, self._parsed, self._to_avro, self._tagged
        write: Callable[..., None] = fastavro.schemaless_writer
        buffer = io.BytesIO()
        encoded: list[bytes] = []
        for event in events:
            record = dict(to_avro(event))
            for name, branch in tagged:
                value = record.get(name)
                if value is not None:
                    record[name] = (branch, value)
            buffer.seek(0)
            buffer.truncate()
            buffer.write(header)
            try:
                write(buffer, schema, record)
            except Exception as exc:  # fastavro raises whatever its writers hit
                raise MalformedPayload(
                    f"{type(event).__name__} does not fit schema of {self._subject}: {exc}"
                ) from exc
            encoded.append(buffer.getvalue())
        return encoded

    async def decode_many(self, payloads: Sequence[bytes | None]) -> list[T | DecodeError]:
        """Decode each payload; one that cannot be decoded yields its DecodeError in its
        slot. Only registry failures (SchemaRegistryError, TransientError) propagate: the
        batch can be retried once the registry answers."""
        native, from_values = self._native, self._from_values
        if native is None or from_values is None:
            return await self._decode_with_fastavro(payloads)
        # The compiled core decodes the payloads with a header of an id written with the
        # codec's own schema (a tuple, or why the body is malformed); it leaves the others as
        # None (no value, not bytes, another schema, an id not seen yet) for fastavro's path.
        rows = native.decode_many(payloads, self._native_headers)
        if None in rows and await self._learn_ids(payloads, rows):
            rows = native.decode_many(payloads, self._native_headers)
        # Those the core left, read by fastavro in one call (a batch of another schema
        # version is all of them).
        left = [value for value, row in zip(payloads, rows, strict=True) if row is None]
        fallback = iter(await self._decode_with_fastavro(left) if left else ())
        results: list[T | DecodeError] = []
        append = results.append
        for value, row in zip(payloads, rows, strict=True):
            if type(row) is tuple:
                try:
                    append(from_values(row))
                except Exception as exc:  # noqa: BLE001 - as a failing from_avro below
                    reason = f"{type(exc).__name__}: {exc}"
                    append(MalformedPayload(f"{_schema_id_of(cast(bytes, value))}: {reason}"))
            elif row is None:
                append(next(fallback))
            else:  # the core read only bytes values
                append(MalformedPayload(f"{_schema_id_of(cast(bytes, value))}: {row}"))
        return results

    async def _learn_ids(
        self, payloads: Sequence[bytes | None], rows: list[tuple[Any, ...] | str | None]
    ) -> bool:
        """Make the plans of the ids first seen among the payloads the core left; whether
        one of them was written with the codec's own schema (the core can read it now)."""
        known = len(self._native_headers)
        for value, row in zip(payloads, rows, strict=True):
            if row is None and type(value) is bytes and value[:HEADER_SIZE] not in self._plans:
                await self._plan_or_error(value)
        return len(self._native_headers) > known

    async def _decode_with_fastavro(
        self, payloads: Sequence[bytes | None]
    ) -> list[T | DecodeError]:
        # The hot loop: one dict lookup by the 5-byte header finds the plan of known ids
        # (and proves the magic byte); everything unusual happens in _plan_or_error.
        plans = self._plans
        from_avro = self._from_avro
        read: Callable[..., Any] = fastavro.schemaless_reader  # a record schema: gives a dict
        results: list[T | DecodeError] = []
        append = results.append
        for value in payloads:
            if value is None:
                append(MissingValue("the record has no value"))
                continue
            # bytearray and memoryview slices cannot key a dict: copy them to bytes.
            payload = value if type(value) is bytes else _as_bytes(value)
            if payload is None:
                append(MalformedPayload(f"a record value must be bytes, not {type(value)}"))
                continue
            plan = plans.get(payload[:HEADER_SIZE])
            if plan is None:
                found = await self._plan_or_error(payload)
                if isinstance(found, DecodeError):
                    append(found)
                    continue
                plan = found
            if plan.writer is None:
                append(MalformedPayload(plan.problem))
                continue
            try:
                body = io.BytesIO(payload)
                body.seek(HEADER_SIZE)
                event = from_avro(read(body, plan.writer, plan.reader))
            except Exception as exc:  # noqa: BLE001 - any failure reading the body means malformed
                append(MalformedPayload(f"{_schema_id_of(payload)}: {type(exc).__name__}: {exc}"))
                continue
            if body.tell() == len(payload):
                append(event)
            else:
                left = len(payload) - body.tell()
                append(
                    MalformedPayload(
                        f"{_schema_id_of(payload)}: {left} bytes left after the record"
                    )
                )
        return results

    async def _plan_or_error(self, payload: bytes) -> _WriterPlan | DecodeError:
        """The plan for a payload whose header is not known yet, or why it has none."""
        header = payload[:HEADER_SIZE]
        if len(header) < HEADER_SIZE:
            return BadMagicByte(
                f"{len(payload)} bytes are too short for the 5-byte wire-format header"
            )
        if header[0] != MAGIC_BYTE:
            return BadMagicByte(
                f"first byte is {header[0]}, not the wire-format magic byte {MAGIC_BYTE}"
            )
        schema_id = int.from_bytes(header[1:], "big")
        now = time.monotonic()
        if self._unknown_until.get(schema_id, 0.0) > now:
            return UnknownSchemaId(f"the registry knows no schema id {schema_id}")
        try:
            text = await self._registry.schema(schema_id)
        except UnknownSchemaId:
            if len(self._unknown_until) >= _MAX_UNKNOWN_IDS:  # garbage with ever new ids
                self._unknown_until = {i: t for i, t in self._unknown_until.items() if t > now}
                if len(self._unknown_until) >= _MAX_UNKNOWN_IDS:
                    self._unknown_until.clear()
            self._unknown_until[schema_id] = now + self._unknown_id_ttl
            return UnknownSchemaId(f"the registry knows no schema id {schema_id}")
        self._unknown_until.pop(schema_id, None)
        plan = self._plan_for(schema_id, text)
        self._remember(header, plan)
        return plan

    def _remember(self, header: bytes, plan: _WriterPlan) -> None:
        self._plans[header] = plan
        if self._native is not None and plan.writer is self._parsed and plan.reader is None:
            self._native_headers.append(header)  # an id written with the codec's own schema

    def _plan_for(self, schema_id: int, text: str) -> _WriterPlan:
        try:
            if canonical_form(text, docs=False) == self._encoding:
                return _WriterPlan(self._parsed)
            writer = parse(text)
            problem = read_problem(self._text, text)
        except SchemaRegistryError as exc:
            return _WriterPlan(None, problem=f"schema id {schema_id} is not valid Avro: {exc}")
        if problem:
            return _WriterPlan(
                None, problem=f"schema id {schema_id} cannot be read as {self._subject}: {problem}"
            )
        return _WriterPlan(writer, self._parsed)


_SELF_CHECKING_TYPES = frozenset({"string", "bytes", "record", "enum", "array", "map"})
"""Avro types whose fastavro writer raises on a value of the wrong type (a decimal's too:
on too many digits or a wrong scale). An int, a fixed or a boolean is only checked when
fastavro validates a union's value, so such branches are never tagged."""


def _tagged_optional_fields(schema: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(field, branch name) of the record's top-level fields typed `[null, X]` (either
    order) whose X is one of `_SELF_CHECKING_TYPES`: the name fastavro's tuple notation
    gives X (a named type's full name, else its type)."""
    tagged: list[tuple[str, str]] = []
    for field in schema["fields"]:
        branches = field["type"]
        if not isinstance(branches, list) or len(branches) != 2 or "null" not in branches:
            continue
        other = branches[1] if branches[0] == "null" else branches[0]
        kind = other["type"] if isinstance(other, dict) else other
        if kind in _SELF_CHECKING_TYPES:
            name = other["name"] if kind in ("record", "enum") else kind
            tagged.append((field["name"], name))
    return tuple(tagged)


def _native_decoder(schema: str) -> RecordDecoder | None:
    """The compiled core's decoder of `schema`, or None if the core is not installed (it is
    built by `uv sync`, not by pip or the image) or does not read every field type of the
    schema."""
    try:
        from pipeline_native import RecordDecoder  # noqa: PLC0415 - optional, built by uv sync
    except ImportError:
        return None
    try:
        return RecordDecoder(schema)
    except ValueError:  # not a flat record of the types the core reads
        return None


def _as_bytes(value: object) -> bytes | None:
    return bytes(value) if isinstance(value, bytearray | memoryview) else None


def _schema_id_of(payload: bytes) -> str:
    return f"schema id {int.from_bytes(payload[1:HEADER_SIZE], 'big')}"
