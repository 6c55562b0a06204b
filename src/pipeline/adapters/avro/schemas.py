"""The Avro schemas of `schemas/*.avsc`: finding them, parsing them, canonical forms.

The schemas live at the root of the repository, and a copy is packaged into the wheel as
`pipeline/_schemas` (hatch force-include), so an installed library finds them without the
source tree.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

from pipeline.application.errors import SchemaRegistryError

SENSOR_READING = "sensor_reading.v1.avsc"
SENSOR_READING_V2 = "sensor_reading.v2.avsc"
"""Version 2 of SensorReading: version 1 plus the optional `firmware_version` (default null)."""
SENSOR_READING_VERSIONS = (SENSOR_READING, SENSOR_READING_V2)
"""Every version of SensorReading, oldest first: the order they are registered in."""
ALERT_RAISED_V1 = "alert_raised.v1.avsc"
ALERT_RAISED = "alert_raised.v2.avsc"
"""Version 2 of AlertRaised: version 1 plus the kinds of the other streams' rules and of the
model, and the optional `domain`, `score`, `reasons`, `model_version` and `features`."""
SHOP_EVENT = "shop_event.v1.avsc"
TRANSACTION_V1 = "transaction.v1.avsc"
TRANSACTION = "transaction.v2.avsc"
"""Version 2 of Transaction: version 1 plus the channel `transfer` and the optional
`merchant_category` (default null)."""
POST_V1 = "post.v1.avsc"
POST = "post.v2.avsc"
"""Version 2 of Post: version 1 plus `mentions` (default empty)."""
ACCOUNT_PROFILE = "account_profile.v1.avsc"
PAYMENT_OUTCOME = "payment_outcome.v1.avsc"
ENGAGEMENT = "engagement.v1.avsc"
SENSOR_AGGREGATE = "sensor_aggregate.v1.avsc"

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

AvroSchema = dict[str, Any] | list[Any] | str
"""A schema as JSON: a record/enum/… object, a union list, or a type name."""


def schemas_dir() -> Path:
    """The directory holding the `.avsc` files: the packaged copy when installed from a
    wheel, else the repository's `schemas/` directory."""
    here = Path(__file__).resolve()
    packaged = here.parents[2] / "_schemas"  # pipeline/_schemas
    if packaged.is_dir():
        return packaged
    repository = here.parents[4] / "schemas"  # <repo>/src/pipeline/adapters/avro/…
    if repository.is_dir():
        return repository
    raise FileNotFoundError(
        f"Avro schemas not found: neither {packaged} (installed wheel) nor {repository} "
        "(source checkout) exists"
    )


@lru_cache(maxsize=32)
def load_schema(file_name: str) -> str:
    """The text of schema file `file_name` (e.g. `sensor_reading.v1.avsc`)."""
    return (schemas_dir() / file_name).read_text(encoding="utf-8")


def schema_text(schema: str | AvroSchema) -> str:
    """`schema` as JSON text (text is returned unchanged)."""
    return schema if isinstance(schema, str) else json.dumps(schema)


def parse(schema: str | AvroSchema) -> dict[str, Any]:
    """Parse a schema (text or JSON) with fastavro, for its readers and writers.

    Raises SchemaRegistryError if the text is not JSON or not a valid Avro schema."""
    try:
        loaded = json.loads(schema) if isinstance(schema, str) else schema
        parsed = fastavro.parse_schema(loaded)
    except Exception as exc:  # fastavro raises many unrelated types for bad schemas
        raise SchemaRegistryError(f"not a valid Avro schema: {exc}") from exc
    if not isinstance(parsed, dict):
        raise SchemaRegistryError("a codec schema must be a named type (a record), not a union")
    return parsed


def expanded(schema: str | AvroSchema) -> AvroSchema:
    """`schema` fully qualified (every name with its namespace), without fastavro's hints,
    and with `{"type": "string"}` written as `"string"`: a stable shape to compare."""
    try:
        loaded = json.loads(schema) if isinstance(schema, str) else schema
        result = fastavro.parse_schema(loaded, _write_hint=False)
    except Exception as exc:  # fastavro raises many unrelated types for bad schemas
        raise SchemaRegistryError(f"not a valid Avro schema: {exc}") from exc
    simplified: AvroSchema = _simplify(result)
    return simplified


def canonical_form(schema: str | AvroSchema, *, docs: bool = True) -> str:
    """A canonical text of `schema`: two schemas with the same canonical form are the same
    schema (same id in a registry). Unlike Avro's Parsing Canonical Form it keeps defaults
    and logical types (a changed default or decimal scale is a schema change), and docs
    unless `docs` is False (for comparing encodings: docs change no byte on the wire)."""
    shape = expanded(schema)
    if not docs:
        shape = _without_docs(shape)
    return json.dumps(shape, sort_keys=True, separators=(",", ":"))


def _without_docs(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_docs(item) for item in node]
    if isinstance(node, dict):
        return {key: _without_docs(value) for key, value in node.items() if key != "doc"}
    return node


def _simplify(node: Any) -> Any:
    # Only schema positions are rewritten; defaults and other attributes are data.
    if isinstance(node, list):
        return [_simplify(branch) for branch in node]
    if not isinstance(node, dict):
        return node
    if node.keys() == {"type"} and node["type"] in PRIMITIVES:
        return node["type"]
    result = dict(node)
    if isinstance(result.get("type"), dict | list):
        result["type"] = _simplify(result["type"])
    for key in ("items", "values"):
        if key in result:
            result[key] = _simplify(result[key])
    if isinstance(result.get("fields"), list):
        result["fields"] = [
            {**field, "type": _simplify(field["type"])} for field in result["fields"]
        ]
    return result
