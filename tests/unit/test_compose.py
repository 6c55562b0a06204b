"""compose.yaml (and its SASL_SSL overlay compose.sasl.yaml) mirror scripts/stack for users
with Docker. No Docker engine runs here, so their structure is checked instead: three KRaft
nodes that agree on their quorum, replication 3 / min.insync 2, the host ports, versions and
names scripts/stack uses, Connect with the Debezium plugin, and an overlay whose listeners,
certificates, users and ACLs fit together."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STACK = (ROOT / "scripts" / "stack").read_text()
NODES = ("kafka-1", "kafka-2", "kafka-3")


def load(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def merged(base: Any, overlay: Any) -> Any:
    """compose's merge of two files: mappings merge key by key, sequences are appended."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        return {
            k: merged(base[k], overlay[k])
            if k in base and k in overlay
            else base.get(k, overlay.get(k))
            for k in {**base, **overlay}
        }
    if isinstance(base, list) and isinstance(overlay, list):
        return base + overlay
    return overlay


def stack_default(variable: str) -> str:
    """A default of scripts/stack, e.g. the port of PIPELINE_STACK_KAFKA2_PORT."""
    match = re.search(rf"\${{{variable}:-([^}}]+)}}", STACK)
    assert match, variable
    return match[1]


def stack_value(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", STACK, re.MULTILINE)
    assert match, name
    return match[1]


BASE = load("compose.yaml")
SECURE = merged(BASE, load("compose.sasl.yaml"))


@pytest.mark.parametrize("compose", [BASE, SECURE], ids=["compose.yaml", "with compose.sasl.yaml"])
def test_every_dependency_and_volume_is_declared(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert set(service.get("depends_on", {})) <= set(services), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in compose["volumes"], (name, source)


def env(service: str, compose: dict[str, Any] = BASE) -> dict[str, str]:
    return {k: str(v) for k, v in compose["services"][service]["environment"].items()}


def test_three_kraft_nodes_agree_on_a_three_voter_quorum() -> None:
    voters = {env(node)["KAFKA_CONTROLLER_QUORUM_VOTERS"] for node in NODES}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert [env(node)["KAFKA_NODE_ID"] for node in NODES] == ["1", "2", "3"]
    assert {env(node)["KAFKA_PROCESS_ROLES"] for node in NODES} == {"broker,controller"}
    assert len({env(node)["CLUSTER_ID"] for node in NODES}) == 1


def test_every_topic_has_three_replicas_and_needs_two_in_sync() -> None:
    for node in NODES:
        settings = env(node)
        assert settings["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert settings["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert settings["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert settings["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert settings["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert settings["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def listeners(value: str) -> dict[str, str]:
    return dict(item.split("://") for item in value.split(","))


@pytest.mark.parametrize(
    ("node", "variable"), list(zip(NODES, ("KAFKA", "KAFKA2", "KAFKA3"), strict=True))
)
def test_the_host_reaches_each_broker_where_scripts_stack_puts_it(node: str, variable: str) -> None:
    port = stack_default(f"PIPELINE_STACK_{variable}_PORT")
    settings = env(node)

    assert f"127.0.0.1:{port}:{port}" in BASE["services"][node]["ports"]
    assert listeners(settings["KAFKA_ADVERTISED_LISTENERS"])["EXTERNAL"] == f"127.0.0.1:{port}"
    assert listeners(settings["KAFKA_LISTENERS"])["EXTERNAL"] == f":{port}"
    assert listeners(settings["KAFKA_ADVERTISED_LISTENERS"])["PLAINTEXT"] == f"{node}:9092"


def test_versions_and_names_are_those_of_scripts_stack() -> None:
    services = BASE["services"]
    assert {services[node]["image"] for node in NODES} == {
        f"apache/kafka:{stack_value('KAFKA_VERSION')}"
    }
    assert (
        services["registry"]["image"]
        == f"apicurio/apicurio-registry:{stack_value('APICURIO_VERSION')}"
    )
    assert (
        services["connect"]["image"]
        == f"quay.io/debezium/connect:{stack_value('DEBEZIUM_VERSION')}"
    )
    assert env("connect")["GROUP_ID"] == stack_value("CONNECT_GROUP")
    port = stack_default("PIPELINE_STACK_CONNECT_PORT")
    assert f"127.0.0.1:{port}:8083" in services["connect"]["ports"]


def test_connect_resolves_the_database_password_the_connectors_name() -> None:
    config = json.loads((ROOT / "connectors" / "sensor-metadata.json").read_text())
    variable = re.fullmatch(r"\$\{env:(\w+)\}", config["database.password"])
    assert variable
    settings = env("connect")
    assert variable[1] in settings
    assert settings["CONNECT_CONFIG_PROVIDERS"] == "env"


def test_postgresql_decodes_logically_for_debezium() -> None:
    assert "wal_level=logical" in BASE["services"]["postgres"]["command"]


def test_the_application_uses_all_three_brokers() -> None:
    for service in ("migrate", "topics", "connectors", "worker-sensors", "api"):
        assert (
            env(service)["PIPELINE_KAFKA__BOOTSTRAP_SERVERS"]
            == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        )
    assert env("connect")["BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"


@pytest.mark.parametrize(
    ("node", "variable"), list(zip(NODES, ("KAFKA", "KAFKA2", "KAFKA3"), strict=True))
)
def test_the_overlay_adds_sasl_ssl_listeners_inside_and_for_the_host(
    node: str, variable: str
) -> None:
    settings = env(node, SECURE)
    port = stack_default(f"PIPELINE_STACK_{variable}_SASL_PORT")
    advertised = listeners(settings["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        p.split(":") for p in settings["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )

    assert advertised["SASL_SSL"] == f"{node}:9094"
    assert advertised["EXTERNAL_SASL"] == f"127.0.0.1:{port}"
    assert set(listeners(settings["KAFKA_LISTENERS"])) == set(advertised) | {"CONTROLLER"}
    assert protocols["SASL_SSL"] == protocols["EXTERNAL_SASL"] == "SASL_SSL"
    assert f"127.0.0.1:{port}:{port}" in SECURE["services"][node]["ports"]
    assert settings["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert (
        settings["KAFKA_AUTHORIZER_CLASS_NAME"]
        == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert "User:admin" in settings["KAFKA_SUPER_USERS"].split(";")
    assert settings["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"


def test_the_overlay_mounts_what_scripts_stack_certs_writes() -> None:
    settings = env("kafka-1", SECURE)
    written = STACK[STACK.index("write_compose_security() {") :]
    for name in (
        settings["KAFKA_SSL_KEYSTORE_FILENAME"],
        settings["KAFKA_SSL_KEYSTORE_CREDENTIALS"],
        "kafka_server_jaas.conf",
    ):
        assert name in written, name
    assert "kafka_server_jaas.conf" in settings["KAFKA_OPTS"]
    assert "./.stack/security:/etc/kafka/secrets:ro" in SECURE["services"]["kafka-1"]["volumes"]


def test_each_principal_gets_its_users_settings_and_its_acls() -> None:
    declared = STACK[STACK.index("SCRAM_USERS=(") :].split(")")[0]
    assert set(re.findall(r"\w+", declared)) - {"SCRAM_USERS"} == {
        "admin",
        "producer",
        "worker",
        "api",
        "connect",
    }
    services = SECURE["services"]
    assert services["worker-sensors"]["env_file"] == ".stack/security/worker.env"
    assert services["api"]["env_file"] == ".stack/security/api.env"
    assert services["topics"]["env_file"] == ".stack/security/admin.env"
    assert services["connect"]["env_file"] == ".stack/security/connect.env"
    command = services["acls"]["command"]
    for role in ("producer", "worker", "api", "connect"):
        assert command[command.index(f"--{role}") + 1] == f"User:{role}"
    assert command[command.index("--connect-group") + 1] == stack_value("CONNECT_GROUP")
    for service in ("topics", "worker-sensors", "api"):
        assert (
            env(service, SECURE)["PIPELINE_KAFKA__BOOTSTRAP_SERVERS"]
            == "kafka-1:9094,kafka-2:9094,kafka-3:9094"
        )
    assert (
        services["worker-sensors"]["depends_on"]["acls"]["condition"]
        == "service_completed_successfully"
    )
