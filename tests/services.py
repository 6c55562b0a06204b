"""Endpoints of the real services, taken from the environment (`eval "$(scripts/stack env)"`).

A test that needs a service calls `require_service(VAR)`: without the variable the test is
skipped, unless PIPELINE_REQUIRE_SERVICES=1 (set by the test command under CI), in which case
it fails, so a CI run can never pass by skipping its integration tests."""

from __future__ import annotations

import os

import pytest

KAFKA = "PIPELINE_KAFKA__BOOTSTRAP_SERVERS"
DATABASE = "PIPELINE_DATABASE__URL"
REGISTRY = "PIPELINE_REGISTRY__URL"
PG_ADMIN = "PIPELINE_STACK_PG_ADMIN_URL"


def services_required() -> bool:
    """True when a missing service must fail the run."""
    return os.environ.get("PIPELINE_REQUIRE_SERVICES") == "1"


def require_service(env_var: str) -> str:
    """The endpoint in `env_var`; skip the test (or fail it, under CI) when it is unset."""
    value = os.environ.get(env_var)
    if value:
        return value
    message = f"{env_var} is not set: start the stack (scripts/stack up) and eval its env"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


# The shapes of `scripts/stack up --brokers 3 --security --connect` (see docs/stack.md).
STACK_HOME = "PIPELINE_STACK_HOME"
KAFKA_BROKERS = "PIPELINE_STACK_KAFKA_BROKERS"
SASL_BOOTSTRAP = "PIPELINE_STACK_KAFKA_SASL_BOOTSTRAP"
CA_FILE = "PIPELINE_STACK_CA_FILE"
SECRETS_DIR = "PIPELINE_STACK_SECRETS_DIR"
CONNECT = "PIPELINE_CONNECT__URL"


def require_cluster() -> str:
    """The bootstrap servers of a three-broker stack (`scripts/stack up --brokers 3`); skip
    (or fail, under CI) on a single broker."""
    bootstrap = require_service(KAFKA)
    if os.environ.get(KAFKA_BROKERS) == "3":
        return bootstrap
    message = "the stack runs one broker: start it with scripts/stack up --brokers 3"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)
