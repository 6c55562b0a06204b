"""Avro schema compatibility: can data written with one schema be read with another?

Follows the schema-resolution rules of the Avro specification (the ones fastavro applies when
it reads): matching records by name, reader fields missing from the writer need a default,
writer fields unknown to the reader are skipped, numeric promotions int → long → float →
double, string ↔ bytes, enum symbols, unions branch by branch. Logical types are ignored,
as in Avro's own checker: they do not change the encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.adapters.avro.schemas import PRIMITIVES, AvroSchema, expanded

# Writer type → reader types that can read it.
_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}

LEVELS = frozenset(
    {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
)


def read_problem(reader: str | AvroSchema, writer: str | AvroSchema) -> str | None:
    """Why data written with `writer` cannot be read with `reader`, or None if it can."""
    reader_json, writer_json = expanded(reader), expanded(writer)
    return _Resolution(_named_types(reader_json), _named_types(writer_json)).problem(
        reader_json, writer_json, _root_name(reader_json)
    )


def compatibility_problem(
    level: str, new: str | AvroSchema, previous: Sequence[str | AvroSchema]
) -> str | None:
    """Why `new` breaks compatibility `level` against the earlier versions `previous`
    (oldest first), or None if it does not. Non-transitive levels check the latest only."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown compatibility level {level!r}")
    if level == "NONE" or not previous:
        return None
    versions = list(enumerate(previous, start=1))
    if not level.endswith("_TRANSITIVE"):
        versions = versions[-1:]
    backward = level.startswith(("BACKWARD", "FULL"))
    forward = level.startswith(("FORWARD", "FULL"))
    for number, old in reversed(versions):
        if backward and (problem := read_problem(new, old)):
            return f"the new schema cannot read data written with version {number}: {problem}"
        if forward and (problem := read_problem(old, new)):
            return f"version {number} cannot read data written with the new schema: {problem}"
    return None


def _root_name(schema: AvroSchema) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return str(schema["name"]).rsplit(".", 1)[-1]
    return "<root>"


def _named_types(schema: AvroSchema) -> dict[str, dict[str, Any]]:
    """Every named type (record, enum, fixed) defined in `schema`, by full name."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "error", "enum", "fixed") and "name" in node:
                found[node["name"]] = node
            if isinstance(kind, dict | list):
                walk(kind)
            for field in node.get("fields", ()):
                walk(field["type"])
            for key in ("items", "values"):
                if key in node:
                    walk(node[key])

    walk(schema)
    return found


def _type_name(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, dict):
        kind = node["type"]
        return "record" if kind == "error" else str(kind)
    return str(node)


def _describe(node: Any) -> str:
    if isinstance(node, dict) and "name" in node:
        return f"{_type_name(node)} {node['name']}"
    if isinstance(node, list):
        return "[" + ", ".join(_describe(branch) for branch in node) + "]"
    return _type_name(node)


class _Resolution:
    """One reader/writer comparison, with the named types of both sides."""

    def __init__(self, reader_names: dict[str, Any], writer_names: dict[str, Any]) -> None:
        self._reader_names = reader_names
        self._writer_names = writer_names
        # Recursive types: a pair of named types already under comparison is assumed fine.
        self._in_progress: set[tuple[str, str]] = set()

    def _deref(self, node: Any, names: dict[str, Any]) -> Any:
        while True:
            if isinstance(node, str) and node not in PRIMITIVES:
                node = names[node]
            elif isinstance(node, dict) and isinstance(node["type"], dict | list):
                node = node["type"]
            elif isinstance(node, dict) and node["type"] in PRIMITIVES:
                return node["type"]  # logical types share their base type's encoding
            else:
                return node

    def problem(self, reader: Any, writer: Any, path: str) -> str | None:
        """Why `writer` data at `path` cannot be read as `reader`, or None."""
        reader = self._deref(reader, self._reader_names)
        writer = self._deref(writer, self._writer_names)
        if isinstance(writer, list) or isinstance(reader, list):
            return self._union_problem(reader, writer, path)
        reader_type, writer_type = _type_name(reader), _type_name(writer)
        if isinstance(reader, str) or isinstance(writer, str):
            if reader_type == writer_type or reader_type in _PROMOTIONS.get(writer_type, ()):
                return None
            return f"at {path}: type changed from {writer_type} to {reader_type}"
        if reader_type != writer_type:
            return f"at {path}: type changed from {_describe(writer)} to {_describe(reader)}"
        if reader_type in ("record", "enum", "fixed") and not _same_name(reader, writer):
            return f"at {path}: {_describe(writer)} was renamed to {reader['name']}"
        return self._complex_problem(reader_type, reader, writer, path)

    def _union_problem(self, reader: Any, writer: Any, path: str) -> str | None:
        if isinstance(writer, list):  # every branch the writer may have written must be readable
            problems = (self.problem(reader, branch, path) for branch in writer)
            return next((problem for problem in problems if problem), None)
        if any(self.problem(branch, writer, path) is None for branch in reader):
            return None
        return (
            f"at {path}: no branch of the reader's union {_describe(reader)} "
            f"can read the writer's {_describe(writer)}"
        )

    def _complex_problem(self, kind: str, reader: Any, writer: Any, path: str) -> str | None:
        if kind == "record":
            return self._record_problem(reader, writer, path)
        if kind == "array":
            return self.problem(reader["items"], writer["items"], f"{path}[]")
        if kind == "map":
            return self.problem(reader["values"], writer["values"], f"{path}{{}}")
        if kind == "enum":
            unknown = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if unknown and "default" not in reader:
                return (
                    f"at {path}: enum {reader['name']} of the reader lacks the writer's "
                    f"symbols {unknown} and has no default"
                )
        if kind == "fixed" and reader["size"] != writer["size"]:
            return f"at {path}: fixed size changed from {writer['size']} to {reader['size']}"
        return None

    def _record_problem(self, reader: Any, writer: Any, path: str) -> str | None:
        pair = (reader["name"], writer["name"])
        if pair in self._in_progress:
            return None
        self._in_progress.add(pair)
        try:
            writer_fields = {field["name"]: field for field in writer["fields"]}
            for field in reader["fields"]:
                name = field["name"]
                written = writer_fields.get(name) or next(
                    (writer_fields[a] for a in field.get("aliases", ()) if a in writer_fields),
                    None,
                )
                if written is None:
                    if "default" not in field:
                        return (
                            f"at {path}: field '{name}' is missing from the writer's schema "
                            "and the reader's schema gives it no default"
                        )
                    continue
                if problem := self.problem(field["type"], written["type"], f"{path}.{name}"):
                    return problem
            return None
        finally:
            self._in_progress.discard(pair)


def _same_name(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    # Like Avro's checker: unqualified names match, or the reader lists the writer's as alias.
    short = str(writer["name"]).rsplit(".", 1)[-1]
    aliases = {str(a) for a in reader.get("aliases", ())}
    return (
        str(reader["name"]).rsplit(".", 1)[-1] == short
        or writer["name"] in aliases
        or short in aliases
    )
