"""ConfluentSchemaRegistry without a registry: how it fails."""

from __future__ import annotations

import pytest

from pipeline.adapters.registry import ConfluentSchemaRegistry
from pipeline.application.errors import ConfigurationError, RegistryUnavailable


async def test_unreachable_registry_raises_registry_unavailable() -> None:
    registry = ConfluentSchemaRegistry("http://127.0.0.1:9", max_retries=0, timeout=2.0)

    with pytest.raises(RegistryUnavailable, match="unreachable"):
        await registry.schema(1)


async def test_unreachable_registry_fails_registration_as_transient() -> None:
    registry = ConfluentSchemaRegistry("http://127.0.0.1:9", max_retries=0, timeout=2.0)

    with pytest.raises(RegistryUnavailable):
        await registry.register("x-value", '{"type": "string"}')


def test_url_without_a_scheme_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        ConfluentSchemaRegistry("registry.example:8081")


def test_basic_auth_must_be_user_colon_password() -> None:
    with pytest.raises(ConfigurationError):
        ConfluentSchemaRegistry("http://127.0.0.1:9", basic_auth="no-colon")
