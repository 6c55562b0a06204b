"""The schema registry in memory: subjects, versions, global ids and compatibility checks."""

from __future__ import annotations

from pipeline.adapters.avro.compatibility import LEVELS, compatibility_problem
from pipeline.adapters.avro.schemas import canonical_form
from pipeline.application.errors import IncompatibleSchema, SchemaRegistryError, UnknownSchemaId


class InMemorySchemaRegistry:
    """A Confluent-style schema registry held in memory (Avro schemas only).

    Like Confluent's, ids are global: the same schema (compared in canonical form, so
    whitespace and key order do not matter) gets the same id in every subject, and
    registering a schema a subject already has returns its id without a new version. Every
    new version is checked against the subject's compatibility level (`default_compatibility`
    unless set per subject); NONE skips the check.
    """

    def __init__(self, *, default_compatibility: str = "BACKWARD") -> None:
        self._default_compatibility = _level(default_compatibility)
        self._texts: dict[int, str] = {}
        self._ids: dict[str, int] = {}  # canonical form → id
        self._versions: dict[str, list[int]] = {}  # subject → ids, oldest first
        self._compatibility: dict[str, str] = {}

    async def register(self, subject: str, schema: str) -> int:
        """Register `schema` under `subject` (idempotent) and return its global id; raise
        IncompatibleSchema naming the offending field if it breaks the subject's level."""
        key = canonical_form(schema)
        versions = self._versions.get(subject, [])
        known = self._ids.get(key)
        if known is not None and known in versions:
            return known
        level = self._compatibility.get(subject, self._default_compatibility)
        problem = compatibility_problem(level, schema, [self._texts[i] for i in versions])
        if problem:
            raise IncompatibleSchema(
                f"schema for subject {subject!r} is not {level} compatible: {problem}"
            )
        if known is None:
            known = len(self._texts) + 1
            self._texts[known] = schema
            self._ids[key] = known
        self._versions[subject] = [*versions, known]
        return known

    async def schema(self, schema_id: int) -> str:
        """The schema text with id `schema_id`; raise UnknownSchemaId if there is none."""
        try:
            return self._texts[schema_id]
        except KeyError:
            raise UnknownSchemaId(f"no schema has id {schema_id}") from None

    async def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level (BACKWARD, FORWARD, FULL, NONE, or a
        _TRANSITIVE variant, which checks every earlier version instead of the latest)."""
        self._compatibility[subject] = _level(level)

    async def compatibility(self, subject: str) -> str:
        """The subject's compatibility level (the registry default if none is set)."""
        return self._compatibility.get(subject, self._default_compatibility)

    async def versions(self, subject: str) -> list[int]:
        """The schema ids of `subject`'s versions, oldest first (empty if unknown)."""
        return list(self._versions.get(subject, ()))


def _level(level: str) -> str:
    normalised = level.upper()
    if normalised not in LEVELS:
        raise SchemaRegistryError(
            f"unknown compatibility level {level!r}; expected one of {', '.join(sorted(LEVELS))}"
        )
    return normalised
