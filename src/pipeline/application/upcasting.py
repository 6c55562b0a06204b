"""Upcasting: pure functions that turn an older version of an event record into the current
version's shape, so the rest of the application only ever sees the current event.

A step is registered by (schema full name, version it reads) and returns the record of the
next version; `Upcasters.upcast` chains the steps up to the current version. Steps never
mutate their input and do no I/O.

Versions that are compatible on the wire (such as SensorReading v1 → v2, which only adds an
optional field with a default) are already resolved by Avro schema resolution in the codec;
their step here exists so a record held as a dict (a dead letter re-driven from its JSON, an
export, a test) reaches the same shape. Versions that are incompatible by design (a field
renamed, split or re-scaled), which the registry refuses under BACKWARD and so must be
published under a new subject or schema name, are mapped to the current event here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

EventRecord = dict[str, Any]
Upcaster = Callable[[Mapping[str, Any]], EventRecord]
"""Turns the record of one version into the record of the next version."""

SENSOR_READING = "io.pipeline.sensors.SensorReading"


@dataclass(frozen=True, slots=True)
class Upcasters:
    """The upcasting steps of every event schema, and each schema's current version."""

    current: Mapping[str, int] = field(default_factory=dict)
    """Schema full name → its current version."""
    steps: Mapping[tuple[str, int], Upcaster] = field(default_factory=dict)
    """(schema full name, version) → the step to the next version."""

    def with_step(self, schema: str, version: int, step: Upcaster) -> Upcasters:
        """These upcasters plus `step` from `version` to `version + 1` of `schema`; the
        schema's current version becomes at least `version + 1`."""
        current = max(self.current.get(schema, 1), version + 1)
        return Upcasters({**self.current, schema: current}, {**self.steps, (schema, version): step})

    def current_version(self, schema: str) -> int:
        """The current version of `schema` (1 when no step is registered for it)."""
        return self.current.get(schema, 1)

    def upcast(self, schema: str, version: int, record: Mapping[str, Any]) -> EventRecord:
        """`record`, written as `version` of `schema`, in the shape of the current version
        (a copy: the input is left as it is). Raises ValueError for a version newer than
        the current one, or below 1, or a missing step."""
        target = self.current_version(schema)
        if version < 1 or version > target:
            raise ValueError(f"{schema} has no version {version} (current is {target})")
        result = dict(record)
        for step_version in range(version, target):
            step = self.steps.get((schema, step_version))
            if step is None:
                raise ValueError(
                    f"no upcaster from version {step_version} to {step_version + 1} of {schema}"
                )
            result = step(result)
        return result


def sensor_reading_v1_to_v2(record: Mapping[str, Any]) -> EventRecord:
    """A SensorReading v1 record as v2: `firmware_version` is absent in v1, so null (the
    schema default) unless the record somehow carries one already."""
    return {**record, "firmware_version": record.get("firmware_version")}


DEFAULT_UPCASTERS = Upcasters().with_step(SENSOR_READING, 1, sensor_reading_v1_to_v2)
"""The upcasters of the pipeline's own event schemas."""
