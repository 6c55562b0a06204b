"""ConfluentSchemaRegistry without a registry: how it fails."""

from __future__ import annotations

import subprocess
import sys

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


async def test_url_without_a_scheme_is_a_configuration_error() -> None:
    registry = ConfluentSchemaRegistry("registry.example:8081")

    with pytest.raises(ConfigurationError):
        await registry.schema(1)
    await registry.close()


async def test_basic_auth_must_be_user_colon_password() -> None:
    registry = ConfluentSchemaRegistry("http://127.0.0.1:9", basic_auth="no-colon")

    with pytest.raises(ConfigurationError):
        await registry.register("x-value", '{"type": "string"}')


def test_importing_the_adapter_leaves_confluents_client_to_the_thread_that_builds_it() -> None:
    # The client's import (httpx2, authlib, cryptography: ~0.3 s) is not on the caller's path.
    probe = (
        "import sys, pipeline.adapters.registry\n"
        "print('confluent_kafka.schema_registry' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "False"
