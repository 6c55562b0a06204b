"""The SchemaRegistry contract, run against the in-memory registry and the real one
(Apicurio's Confluent-compatible API in the stack, or any Confluent Schema Registry).

`SchemaRegistryContract` states the behaviour; each subclass only says how to build the
registry. Every test works in its own uniquely named subjects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from pipeline.adapters.avro import canonical_form
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.adapters.registry import ConfluentSchemaRegistry
from pipeline.application.errors import (
    IncompatibleSchema,
    SchemaRegistryError,
    UnknownSchemaId,
)
from pipeline.application.ports import SchemaRegistry
from tests.services import REGISTRY, require_service

UNKNOWN_ID = 2_000_000_000


def record(*fields: dict[str, Any], name: str = "Thing") -> str:
    """A record schema with `fields`, as text."""
    return json.dumps(
        {"type": "record", "name": name, "namespace": "io.pipeline.test", "fields": list(fields)}
    )


ID = {"name": "id", "type": "string"}
COUNT_INT = {"name": "count", "type": "int"}
COUNT_LONG = {"name": "count", "type": "long"}
OPTIONAL_NOTE = {"name": "note", "type": ["null", "string"], "default": None}
REQUIRED_NOTE = {"name": "note", "type": "string"}


class SchemaRegistryContract:
    """What every SchemaRegistry adapter must do. Subclasses provide the `registry` fixture."""

    @pytest.fixture
    def subject(self) -> str:
        return f"contract-{uuid4().hex}-value"

    async def test_register_returns_the_id_each_schema_is_read_back_by(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        name = f"Versions{uuid4().hex}"
        first, second = record(ID, name=name), record(ID, OPTIONAL_NOTE, name=name)

        first_id = await registry.register(subject, first)
        second_id = await registry.register(subject, second)

        assert first_id != second_id
        assert canonical_form(await registry.schema(first_id)) == canonical_form(first)
        assert canonical_form(await registry.schema(second_id)) == canonical_form(second)

    async def test_registering_the_same_schema_again_returns_the_same_id(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        schema = record(ID, name=f"Again{uuid4().hex}")
        first = await registry.register(subject, schema)

        again = await registry.register(subject, schema)

        assert again == first

    async def test_formatting_does_not_make_a_new_schema(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        schema = record(ID, name=f"Formatted{uuid4().hex}")
        first = await registry.register(subject, schema)

        reformatted = await registry.register(subject, json.dumps(json.loads(schema), indent=4))

        assert reformatted == first

    async def test_a_different_schema_gets_a_new_id(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.set_compatibility(subject, "NONE")
        first = await registry.register(subject, record(ID, name=f"A{uuid4().hex}"))

        second = await registry.register(subject, record(ID, name=f"B{uuid4().hex}"))

        assert second != first

    async def test_the_same_schema_in_two_subjects_has_one_id(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        schema = record(ID, name=f"Shared{uuid4().hex}")

        first = await registry.register(subject, schema)
        second = await registry.register(subject.replace("-value", "-other-value"), schema)

        assert first == second

    async def test_schema_by_id_returns_the_registered_schema(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        schema = record(ID, OPTIONAL_NOTE, name=f"RoundTrip{uuid4().hex}")
        schema_id = await registry.register(subject, schema)

        text = await registry.schema(schema_id)

        assert canonical_form(text) == canonical_form(schema)

    async def test_unknown_id_raises_unknown_schema_id(self, registry: SchemaRegistry) -> None:
        with pytest.raises(UnknownSchemaId):
            await registry.schema(UNKNOWN_ID)

    async def test_compatibility_set_on_a_subject_is_read_back(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.set_compatibility(subject, "FULL")
        full = await registry.compatibility(subject)
        await registry.set_compatibility(subject, "forward")
        forward = await registry.compatibility(subject)

        assert (full, forward) == ("FULL", "FORWARD")

    async def test_subject_without_a_level_reports_the_registry_default(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        level = await registry.compatibility(subject)

        assert level == "BACKWARD"

    async def test_unknown_compatibility_level_is_refused(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        with pytest.raises(SchemaRegistryError):
            await registry.set_compatibility(subject, "SIDEWAYS")

    async def test_invalid_schema_is_refused(self, registry: SchemaRegistry, subject: str) -> None:
        with pytest.raises(SchemaRegistryError):
            await registry.register(subject, '{"type": "record", "name": "Broken"')

    async def test_backward_accepts_an_optional_field_with_a_default(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.set_compatibility(subject, "BACKWARD")
        v1 = await registry.register(subject, record(ID))

        v2 = await registry.register(subject, record(ID, OPTIONAL_NOTE))

        assert v2 != v1

    async def test_backward_refuses_a_required_field_without_a_default(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.set_compatibility(subject, "BACKWARD")
        await registry.register(subject, record(ID))

        with pytest.raises(IncompatibleSchema):
            await registry.register(subject, record(ID, REQUIRED_NOTE))

    async def test_backward_accepts_a_promoted_type(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.set_compatibility(subject, "BACKWARD")
        await registry.register(subject, record(ID, COUNT_INT))

        promoted = await registry.register(subject, record(ID, COUNT_LONG))

        assert isinstance(promoted, int)

    async def test_forward_refuses_a_widened_type(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.set_compatibility(subject, "FORWARD")
        await registry.register(subject, record(ID, COUNT_INT))

        with pytest.raises(IncompatibleSchema):
            await registry.register(subject, record(ID, COUNT_LONG))

    async def test_full_refuses_removing_a_field_without_a_default(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.set_compatibility(subject, "FULL")
        await registry.register(subject, record(ID, COUNT_INT))

        with pytest.raises(IncompatibleSchema):
            await registry.register(subject, record(ID))

    async def test_none_accepts_any_change(self, registry: SchemaRegistry, subject: str) -> None:
        await registry.set_compatibility(subject, "NONE")
        await registry.register(subject, record(ID, COUNT_INT))

        changed = await registry.register(subject, record(REQUIRED_NOTE))

        assert isinstance(changed, int)


class TestInMemorySchemaRegistry(SchemaRegistryContract):
    @pytest.fixture
    def registry(self) -> SchemaRegistry:
        return InMemorySchemaRegistry()

    # Beyond the contract: the in-memory registry says which field broke compatibility
    # (Apicurio gives a JSON pointer such as /fields/1/type instead).

    async def test_refusal_names_the_field_missing_a_default(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.register(subject, record(ID))

        with pytest.raises(IncompatibleSchema, match=r"BACKWARD.*field 'note'.*no default"):
            await registry.register(subject, record(ID, REQUIRED_NOTE))

    async def test_refusal_names_the_field_whose_type_changed(
        self, registry: SchemaRegistry, subject: str
    ) -> None:
        await registry.set_compatibility(subject, "FORWARD")
        await registry.register(subject, record(ID, COUNT_INT))

        with pytest.raises(IncompatibleSchema, match=r"Thing\.count.*from long to int"):
            await registry.register(subject, record(ID, COUNT_LONG))

    async def test_default_level_is_configurable(self, subject: str) -> None:
        registry = InMemorySchemaRegistry(default_compatibility="none")

        assert await registry.compatibility(subject) == "NONE"

    async def test_refused_schema_adds_no_version(self, subject: str) -> None:
        registry = InMemorySchemaRegistry()
        first = await registry.register(subject, record(ID))
        with pytest.raises(IncompatibleSchema):
            await registry.register(subject, record(ID, REQUIRED_NOTE))

        assert await registry.versions(subject) == [first]

    async def test_transitive_level_checks_every_earlier_version(self, subject: str) -> None:
        registry = InMemorySchemaRegistry(default_compatibility="NONE")
        await registry.register(subject, record(ID, COUNT_INT))
        await registry.register(subject, record(ID))  # drops count
        await registry.set_compatibility(subject, "FORWARD_TRANSITIVE")

        # Version 2 (no count) would read it; version 1 needs count and gets none.
        with pytest.raises(IncompatibleSchema, match="version 1"):
            await registry.register(subject, record(ID, OPTIONAL_NOTE))


@pytest.mark.integration
class TestConfluentSchemaRegistry(SchemaRegistryContract):
    @pytest.fixture
    async def registry(self) -> AsyncIterator[SchemaRegistry]:
        registry = ConfluentSchemaRegistry(require_service(REGISTRY))
        yield registry
        await registry.close()

    async def test_non_transitive_level_checks_only_the_latest_version(self, subject: str) -> None:
        registry = InMemorySchemaRegistry(default_compatibility="NONE")
        await registry.register(subject, record(ID, COUNT_INT))
        await registry.register(subject, record(ID))
        await registry.set_compatibility(subject, "FORWARD")

        third = await registry.register(subject, record(ID, OPTIONAL_NOTE))

        assert len(await registry.versions(subject)) == 3
        assert third in await registry.versions(subject)
