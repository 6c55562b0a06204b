"""Kafka, PostgreSQL and the schema registry in throwaway Docker containers (testcontainers),
for a test run on a machine with a Docker engine and no `scripts/stack` endpoints.

`tests.services` decides when (see `endpoint_source`); this module only starts the three
containers, once per test run, and removes them when the run ends (testcontainers' reaper
removes them too should the run be killed). Images as in compose.yaml, except Kafka:
testcontainers' Kafka module configures Confluent's image (in KRaft mode)."""

from __future__ import annotations

import atexit
import functools

from testcontainers.community.kafka import KafkaContainer
from testcontainers.community.postgres import PostgresContainer
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

REGISTRY_API = "/apis/ccompat/v7"


@functools.cache
def started_endpoints() -> dict[str, str]:
    """Start the containers (first call only); their endpoints by settings variable."""
    kafka = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
    postgres = PostgresContainer(
        "postgres:15", username="pipeline", password="pipeline", dbname="pipeline", driver="asyncpg"
    )
    registry = (
        DockerContainer("apicurio/apicurio-registry:3.3.3")
        .with_exposed_ports(8080)
        .with_envs(
            # Confluent-like behaviour of the ccompat API, as scripts/stack configures it.
            APICURIO_RULES_GLOBAL_COMPATIBILITY="BACKWARD",
            APICURIO_RULES_GLOBAL_VALIDITY="FULL",
            APICURIO_REST_DELETION_GROUP_ENABLED="true",
            APICURIO_REST_DELETION_ARTIFACT_ENABLED="true",
            APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED="true",
        )
        .waiting_for(HttpWaitStrategy(8080, f"{REGISTRY_API}/subjects").for_status_code(200))
    )
    for container in (kafka, postgres, registry):
        container.start()
        atexit.register(container.stop)
    host = registry.get_container_host_ip()
    return {
        "PIPELINE_KAFKA__BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(),
        "PIPELINE_DATABASE__URL": postgres.get_connection_url(),
        "PIPELINE_REGISTRY__URL": f"http://{host}:{registry.get_exposed_port(8080)}{REGISTRY_API}",
    }
