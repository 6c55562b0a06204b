"""Endpoints of the real services for the tests that need them.

The environment comes first: `eval "$(scripts/stack env)"` (or any PIPELINE_… endpoint set by
hand). When none of the three service endpoints is set and a Docker engine answers, the first
test that needs a service starts Kafka, PostgreSQL and the schema registry with
testcontainers (`tests.containers`) and the run uses them. Otherwise the test is skipped,
unless PIPELINE_REQUIRE_SERVICES=1 (set by the test command under CI), in which case it
fails, so a CI run can never pass by skipping its integration tests."""

from __future__ import annotations

import functools
import os
import shlex
import time
from collections.abc import Callable, Mapping
from typing import Literal

import httpx
import pytest

KAFKA = "PIPELINE_KAFKA__BOOTSTRAP_SERVERS"
DATABASE = "PIPELINE_DATABASE__URL"
REGISTRY = "PIPELINE_REGISTRY__URL"
PG_ADMIN = "PIPELINE_STACK_PG_ADMIN_URL"

CONTAINER_SERVICES = (KAFKA, DATABASE, REGISTRY)
"""The endpoints testcontainers can provide (PG_ADMIN is scripts/stack's own)."""

Source = Literal["environment", "containers", "none"]


def services_required() -> bool:
    """True when a missing service must fail the run."""
    return os.environ.get("PIPELINE_REQUIRE_SERVICES") == "1"


def endpoint_source(
    env_var: str, environ: Mapping[str, str], docker_answers: Callable[[], bool]
) -> Source:
    """Where the endpoint in `env_var` comes from: the environment when it is set there;
    containers when no service endpoint is set at all (a run never mixes the two) and a
    Docker engine answers (asked only then); none otherwise."""
    if environ.get(env_var):
        return "environment"
    if (
        env_var in CONTAINER_SERVICES
        and not any(environ.get(name) for name in CONTAINER_SERVICES)
        and docker_answers()
    ):
        return "containers"
    return "none"


@functools.cache
def docker_answers() -> bool:
    """Whether a Docker engine answers a ping within a few seconds (asked once per run)."""
    try:
        import docker  # noqa: PLC0415 - testcontainers' client, only when it may be needed

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no engine, no socket, no permission: all mean "no"
        return False


def require_service(env_var: str) -> str:
    """The endpoint in `env_var`; skip the test (or fail it, under CI) when there is none."""
    source = endpoint_source(env_var, os.environ, docker_answers)
    if source == "containers":
        from tests.containers import started_endpoints  # noqa: PLC0415 - needs an engine

        # Exported, so that `pipeline` child processes and later tests use them too.
        os.environ.update(started_endpoints())
    value = os.environ.get(env_var)
    if value:
        return value
    message = (
        f"{env_var} is not set: start the stack (scripts/stack up) and eval its env, "
        "or run the tests where a Docker engine answers (testcontainers)"
    )
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


def wait_until_answering(url: str, *, what: str, timeout: float) -> None:
    """Wait until GET `url` answers 200, for a service the stack may still be building (Jaeger
    on a fresh machine: `scripts/stack up` starts it once built). Skip (fail under CI) naming
    it when it does not answer within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    why = "no answer"
    while time.monotonic() < deadline:
        try:
            status = httpx.get(url, timeout=2).status_code
        except httpx.HTTPError as error:
            why = f"{type(error).__name__}: {error}"
        else:
            if status == 200:
                return
            why = f"HTTP {status}"
        time.sleep(1)
    message = (
        f"{what} did not answer at {url} within {timeout:g} s ({why}); "
        "see scripts/stack status and .stack/logs/jaeger-build.log"
    )
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


CLUSTER_ENV = "PIPELINE_TEST_CLUSTER_ENV"
"""`scripts/cluster-stack env`'s output, exported by scripts/test: the production-shape stack
that tests marked `cluster` run on, beside the single-broker stack of the rest of the run."""


def cluster_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a test marked `cluster` takes from CLUSTER_ENV in `environ`: the
    production-shape stack's endpoints, in place of the default stack's (the cluster exports
    every variable the default stack does). Nothing when CLUSTER_ENV is unset: the environment
    is then already the cluster's, or the cluster tests skip."""
    exports: dict[str, str] = {}
    for line in environ.get(CLUSTER_ENV, "").splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            exports[name] = value
    return exports


def require_cluster() -> str:
    """The bootstrap servers of a three-broker stack (`scripts/stack up --brokers 3`); skip
    (or fail, under CI) on a single broker."""
    bootstrap = require_service(KAFKA)
    if os.environ.get(KAFKA_BROKERS) == "3":
        return bootstrap
    message = (
        "the stack runs one broker: scripts/test runs the cluster tests on "
        'scripts/cluster-stack (or eval "$(scripts/cluster-stack env)")'
    )
    if services_required():
        pytest.fail(message)
    pytest.skip(message)
