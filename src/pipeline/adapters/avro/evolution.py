"""Schema evolution: the versions of an event schema registered in order, under a
compatibility level enforced by the registry subject's configuration.

The registry is the judge: the subject's level is set first, then every version is registered
oldest first, so each new version is checked against the ones before it. A refused version
raises IncompatibleSchema at registration time (deploy time), never later when a record
cannot be read; the message names the subject, the version and, where the local checker can
tell, the field that breaks compatibility (Apicurio only gives a JSON pointer).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.adapters.avro.codec import value_subject
from pipeline.adapters.avro.compatibility import compatibility_problem
from pipeline.adapters.avro.schemas import SENSOR_READING_VERSIONS, load_schema
from pipeline.application.errors import IncompatibleSchema
from pipeline.application.ports import SchemaRegistry

DEFAULT_COMPATIBILITY = "BACKWARD"


async def register_versions(
    registry: SchemaRegistry,
    subject: str,
    versions: Sequence[str],
    *,
    compatibility: str = DEFAULT_COMPATIBILITY,
) -> list[int]:
    """Set `subject`'s compatibility level to `compatibility`, then register `versions`
    (schema texts, oldest first) in order; return their ids.

    Idempotent: versions the subject already has keep their ids. Raises IncompatibleSchema
    if the registry refuses a version; the versions before it stay registered."""
    await registry.set_compatibility(subject, compatibility)
    ids: list[int] = []
    for number, schema in enumerate(versions, start=1):
        try:
            ids.append(await registry.register(subject, schema))
        except IncompatibleSchema as exc:
            level = compatibility.upper()
            why = compatibility_problem(level, schema, versions[: number - 1])
            # The in-memory registry already explains; Apicurio only gives a JSON pointer.
            detail = f": {why}" if why and why not in str(exc) else ""
            raise IncompatibleSchema(
                f"version {number} of subject {subject!r} was refused by the registry, not "
                f"{level} compatible with the versions before it{detail} ({exc})"
            ) from exc
    return ids


async def register_sensor_reading_versions(
    registry: SchemaRegistry, topic: str, *, compatibility: str = DEFAULT_COMPATIBILITY
) -> list[int]:
    """Register every version of `io.pipeline.sensors.SensorReading` (v1, v2) under the
    value subject of `topic`, with the subject's level set to `compatibility` (BACKWARD:
    every new version can read the records of the previous one)."""
    return await register_versions(
        registry,
        value_subject(topic),
        [load_schema(name) for name in SENSOR_READING_VERSIONS],
        compatibility=compatibility,
    )
