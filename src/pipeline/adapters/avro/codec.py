"""Events ↔ Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import fastavro

from pipeline.adapters.avro.binary import Reader, UnsupportedSchemaError, compile_reader
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

T = TypeVar("T")

MAGIC_BYTE = 0
HEADER_SIZE = 5


def value_subject(topic: str) -> str:
    """The subject of a topic's record values under Confluent's TopicNameStrategy."""
    return f"{topic}-value"


@dataclass(frozen=True, slots=True)
class _WriterPlan:
    """How to read bodies written with one schema id."""

    read: Callable[[bytes], Any] | None
    """Body bytes (after the 5-byte header) → Avro record; None if the id cannot be read."""
    problem: str = ""


class AvroCodec(Generic[T]):
    """Encodes events of type T as Confluent wire-format Avro and decodes them back.

    `schema` is the reader schema, also the schema every `encode` writes with; it is
    registered under `subject` on the first `encode`. Records written with another schema
    id are read by Avro schema resolution (writer = the registered schema of that id,
    reader = `schema`), so older and newer versions of the event decode alike. Writer
    schemas are fetched from `registry` once per id and cached; ids the registry does not
    know are remembered for `unknown_id_ttl` seconds, so garbage does not hammer it.
    """

    def __init__(
        self,
        *,
        registry: SchemaRegistry,
        subject: str,
        schema: str | AvroSchema,
        to_avro: Callable[[T], Mapping[str, Any]],
        from_avro: Callable[[dict[str, Any]], T],
        unknown_id_ttl: float = 60.0,
    ) -> None:
        self._registry = registry
        self._subject = subject
        self._text = schema_text(schema)
        self._parsed = parse(self._text)
        self._canonical = canonical_form(self._text)
        self._to_avro = to_avro
        self._from_avro = from_avro
        self._unknown_id_ttl = unknown_id_ttl
        self._own_plan = self._plan_for(self._parsed, same_as_reader=True)
        self._schema_id: int | None = None
        self._header = b""
        self._plans: dict[int, _WriterPlan] = {}
        self._unknown_until: dict[int, float] = {}

    @property
    def subject(self) -> str:
        """The registry subject the codec's schema is registered under."""
        return self._subject

    async def schema_id(self) -> int:
        """The registry id of the codec's schema, registering it on first use."""
        if self._schema_id is None:
            schema_id = await self._registry.register(self._subject, self._text)
            self._plans[schema_id] = self._own_plan
            self._header = bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big")
            self._schema_id = schema_id
        return self._schema_id

    async def encode(self, event: T) -> bytes:
        """The wire bytes of `event`. Raises MalformedPayload if the event does not fit
        the schema (a decimal with too many digits, an int beyond 32 bits, a naive time)."""
        if self._schema_id is None:
            await self.schema_id()
        buffer = io.BytesIO()
        buffer.write(self._header)
        try:
            fastavro.schemaless_writer(buffer, self._parsed, self._to_avro(event))
        except Exception as exc:  # fastavro raises whatever its writers hit
            raise MalformedPayload(
                f"{type(event).__name__} does not fit schema of {self._subject}: {exc}"
            ) from exc
        return buffer.getvalue()

    async def decode_many(self, payloads: Sequence[bytes | None]) -> list[T | DecodeError]:
        """Decode each payload; one that cannot be decoded yields its DecodeError in its
        slot. Only registry failures (SchemaRegistryError, TransientError) propagate: the
        batch can be retried once the registry answers."""
        plans = self._plans
        from_avro = self._from_avro
        results: list[T | DecodeError] = []
        append = results.append
        for payload in payloads:
            if payload is None:
                append(MissingValue("the record has no value"))
                continue
            if len(payload) < HEADER_SIZE or payload[0] != MAGIC_BYTE:
                append(BadMagicByte(_bad_header(payload)))
                continue
            schema_id = int.from_bytes(payload[1:HEADER_SIZE], "big")
            plan = plans.get(schema_id)
            if plan is None:
                plan = await self._load_plan(schema_id)
                if plan is None:
                    append(UnknownSchemaId(f"the registry knows no schema id {schema_id}"))
                    continue
            if plan.read is None:
                append(MalformedPayload(plan.problem))
                continue
            try:
                append(from_avro(plan.read(payload)))
            except Exception as exc:  # noqa: BLE001 - any failure reading the body means malformed
                append(MalformedPayload(f"schema id {schema_id}: {type(exc).__name__}: {exc}"))
        return results

    async def _load_plan(self, schema_id: int) -> _WriterPlan | None:
        """The plan for `schema_id`, fetching its schema; None if the registry has none."""
        now = time.monotonic()
        if self._unknown_until.get(schema_id, 0.0) > now:
            return None
        try:
            text = await self._registry.schema(schema_id)
        except UnknownSchemaId:
            self._unknown_until[schema_id] = now + self._unknown_id_ttl
            return None
        self._unknown_until.pop(schema_id, None)
        plan = self._plan_for_text(schema_id, text)
        self._plans[schema_id] = plan
        return plan

    def _plan_for_text(self, schema_id: int, text: str) -> _WriterPlan:
        try:
            same = canonical_form(text) == self._canonical
            writer = parse(text)
            problem = None if same else read_problem(self._text, text)
        except SchemaRegistryError as exc:
            return _WriterPlan(None, f"schema id {schema_id} is not a valid Avro schema: {exc}")
        if problem:
            return _WriterPlan(
                None, f"schema id {schema_id} cannot be read as {self._subject}: {problem}"
            )
        return self._plan_for(writer, same_as_reader=same)

    def _plan_for(self, writer: dict[str, Any], *, same_as_reader: bool) -> _WriterPlan:
        if same_as_reader:
            try:
                return _WriterPlan(_whole_body(compile_reader(writer)))
            except UnsupportedSchemaError:
                return _WriterPlan(_fastavro_body(writer, None))
        return _WriterPlan(_fastavro_body(writer, self._parsed))


def _whole_body(read: Reader) -> Callable[[bytes], Any]:
    def read_body(payload: bytes) -> Any:
        record, end = read(payload, HEADER_SIZE)
        if end != len(payload):
            raise ValueError(f"{len(payload) - end} bytes left after the record")
        return record

    return read_body


def _fastavro_body(writer: dict[str, Any], reader: dict[str, Any] | None) -> Callable[[bytes], Any]:
    def read_body(payload: bytes) -> Any:
        buffer = io.BytesIO(payload)
        buffer.seek(HEADER_SIZE)
        record = fastavro.schemaless_reader(buffer, writer, reader)
        if buffer.tell() != len(payload):
            raise ValueError(f"{len(payload) - buffer.tell()} bytes left after the record")
        return record

    return read_body


def _bad_header(payload: bytes) -> str:
    if len(payload) < HEADER_SIZE:
        return f"{len(payload)} bytes are too short for the 5-byte wire-format header"
    return f"first byte is {payload[0]}, not the wire-format magic byte {MAGIC_BYTE}"
