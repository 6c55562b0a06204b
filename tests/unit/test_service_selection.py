"""Which services a test run uses: `scripts/stack` endpoints from the environment first;
testcontainers only when no endpoint is given and a Docker engine answers; else none."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.services import (
    CLUSTER_ENV,
    DATABASE,
    KAFKA,
    PG_ADMIN,
    REGISTRY,
    cluster_environment,
    endpoint_source,
)

STACK = {KAFKA: "127.0.0.1:19092", DATABASE: "postgresql+asyncpg://p@h/db", REGISTRY: "http://r"}


def engine(answers: bool) -> tuple[list[str], Callable[[], bool]]:
    """A Docker probe answering `answers`, and the list of times it was asked."""
    asked: list[str] = []

    def probe() -> bool:
        asked.append("ping")
        return answers

    return asked, probe


@pytest.mark.parametrize("var", [KAFKA, DATABASE, REGISTRY])
def test_stack_endpoints_come_first_and_docker_is_not_even_asked(var: str) -> None:
    asked, probe = engine(answers=True)

    assert endpoint_source(var, STACK, probe) == "environment"
    assert asked == []


@pytest.mark.parametrize("var", [KAFKA, DATABASE, REGISTRY])
def test_without_any_endpoint_a_docker_engine_provides_containers(var: str) -> None:
    _, probe = engine(answers=True)

    assert endpoint_source(var, {}, probe) == "containers"


def test_without_endpoints_or_a_docker_engine_there_is_no_service() -> None:
    asked, probe = engine(answers=False)

    assert endpoint_source(KAFKA, {}, probe) == "none"
    assert asked == ["ping"]


def test_a_partial_stack_is_not_completed_with_containers() -> None:
    asked, probe = engine(answers=True)
    only_kafka = {KAFKA: STACK[KAFKA]}

    assert endpoint_source(REGISTRY, only_kafka, probe) == "none"
    assert asked == []


def test_the_stack_admin_url_never_comes_from_containers() -> None:
    _, probe = engine(answers=True)

    assert endpoint_source(PG_ADMIN, {}, probe) == "none"


def test_a_cluster_test_takes_every_endpoint_of_the_stack_exported_beside_the_default() -> None:
    exported = (
        "export PIPELINE_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:20092,127.0.0.1:20094\n"
        "export PIPELINE_STACK_KAFKA_BROKERS=3\n"
        "export PIPELINE_STACK_CA_FILE='/a dir/ca.pem'\n"
    )

    taken = cluster_environment({**STACK, CLUSTER_ENV: exported})

    assert taken == {
        KAFKA: "127.0.0.1:20092,127.0.0.1:20094",
        "PIPELINE_STACK_KAFKA_BROKERS": "3",
        "PIPELINE_STACK_CA_FILE": "/a dir/ca.pem",
    }


def test_without_a_cluster_stack_exported_a_cluster_test_keeps_its_environment() -> None:
    assert cluster_environment(STACK) == {}
