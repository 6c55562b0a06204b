"""compose.yaml's monitoring (no Docker engine runs here, so its structure is checked): every
file it mounts exists, Prometheus scrapes the services where they serve /metrics, Grafana is
provisioned with the datasource the dashboards name, and the application's services get
every endpoint and port they need."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from pipeline.entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
STACK = (ROOT / "scripts" / "stack").read_text()
APPLICATION = ("migrate", "worker-sensors", "api")


def mounts(service: str) -> dict[str, str]:
    """The bind mounts of `service`: target → source."""
    return {
        target: source
        for source, target, *_ in (v.split(":") for v in SERVICES[service].get("volumes", []))
        if source.startswith(".")
    }


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service].get("environment", {}).items()}


def test_every_mounted_file_and_volume_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in COMPOSE["volumes"], (name, source)


def test_prometheus_scrapes_the_worker_and_the_api_where_they_serve_metrics() -> None:
    files = mounts("prometheus")
    config = yaml.safe_load((ROOT / files["/etc/prometheus/prometheus.yml"]).read_text())
    targets_dir = ROOT / files["/etc/prometheus/targets"]
    assert files["/etc/prometheus/rules"] == "./monitoring/prometheus/rules"
    assert config["rule_files"] == ["rules/*.yml"]
    jobs = {job["job_name"]: job["file_sd_configs"][0]["files"] for job in config["scrape_configs"]}
    scraped: dict[str, list[str]] = {}
    for job, patterns in jobs.items():
        assert all(p.startswith("targets/") for p in patterns), job
        for pattern in patterns:
            for path in targets_dir.glob(pattern.removeprefix("targets/")):
                scraped.setdefault(job, [])
                scraped[job] += [
                    t for group in json.loads(path.read_text()) for t in group["targets"]
                ]

    worker = env("worker-sensors")
    assert scraped == {
        "pipeline-workers": [f"worker-sensors:{worker['PIPELINE_METRICS__PORT']}"],
        "pipeline-api": ["api:8000"],
    }
    assert worker["PIPELINE_METRICS__HOST"] == "0.0.0.0"  # reachable from prometheus
    assert "--port" in SERVICES["api"]["command"]
    assert SERVICES["api"]["command"][SERVICES["api"]["command"].index("--port") + 1] == "8000"
    assert "127.0.0.1:9400:9400" in SERVICES["worker-sensors"]["ports"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboards_the_files_name() -> None:
    files = mounts("grafana")
    provisioning = ROOT / files["/etc/grafana/provisioning"]
    [datasource] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    [provider] = yaml.safe_load((provisioning / "dashboards" / "pipeline.yml").read_text())[
        "providers"
    ]
    dashboards = ROOT / files[provider["options"]["path"]]

    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in SERVICES["grafana"]["depends_on"]
    named = {
        target["datasource"]["uid"]
        for path in dashboards.glob("*.json")
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", ())  # a row has none
    }
    assert named == {datasource["uid"]}
    assert {p.stem for p in dashboards.glob("*.json")} == {"overview", "job", "api"}


def test_prometheus_and_grafana_have_healthchecks_and_local_ports() -> None:
    for name, port in (("prometheus", "19090:9090"), ("grafana", "3000:3000")):
        assert SERVICES[name]["healthcheck"]["test"], name
        assert f"127.0.0.1:{port}" in SERVICES[name]["ports"], name


def test_the_application_services_get_every_endpoint_they_need() -> None:
    for name in APPLICATION:
        settings = env(name)
        for variable in (
            "PIPELINE_KAFKA__BOOTSTRAP_SERVERS",
            "PIPELINE_DATABASE__URL",
            "PIPELINE_REGISTRY__URL",
        ):
            assert settings.get(variable), (name, variable)
        configured = Settings(**_nested(settings))  # what the service would read
        assert configured.kafka.bootstrap_servers
        assert not configured.database.is_default


def _nested(variables: dict[str, str]) -> dict[str, Any]:
    """PIPELINE_A__B=v as {"a": {"b": v}} (what pydantic-settings builds from the env)."""
    out: dict[str, Any] = {}
    for name, value in variables.items():
        path = name.removeprefix("PIPELINE_").lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def test_jaeger_and_kafka_ui_have_healthchecks_and_local_ports() -> None:
    # Jaeger's query API and OTLP/HTTP on the host ports scripts/stack gives them.
    for name, ports in (
        ("jaeger", {"127.0.0.1:19686:16686", "127.0.0.1:19318:4318"}),
        ("kafka-ui", {"127.0.0.1:18080:8080"}),
    ):
        assert SERVICES[name]["healthcheck"]["test"], name
        assert set(SERVICES[name]["ports"]) == ports, name
    assert SERVICES["jaeger"]["image"] == "jaegertracing/jaeger:2.13.0"  # = ensure-jaeger's v1.76.0
    assert "v1.76.0" in (ROOT / "scripts" / "ensure-jaeger").read_text()


def test_the_worker_and_the_api_send_their_traces_to_jaeger_under_their_own_names() -> None:
    names = set()
    for name in ("worker-sensors", "api"):
        tracing = Settings(**_nested(env(name))).tracing
        assert tracing.endpoint is not None, name
        assert (tracing.endpoint.host, tracing.endpoint.port) == ("jaeger", 4318), name
        assert 0 < tracing.sample_ratio <= 1, name
        names.add(tracing.service_name)
    assert len(names) == 2


def test_kafka_ui_reads_the_stacks_brokers_registry_and_connect() -> None:
    settings = env("kafka-ui")
    for broker in settings["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"].split(","):
        host, port = broker.split(":")
        assert host in SERVICES, broker
        assert port == "9092", broker
    assert (
        settings["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"]
        == env("worker-sensors")["PIPELINE_REGISTRY__URL"]
    )
    assert (
        settings["KAFKA_CLUSTERS_0_KAFKACONNECT_0_ADDRESS"]
        == env("worker-sensors")["PIPELINE_CONNECT__URL"]
    )


def compose_default(value: str) -> str:
    """A compose value with its `${VARIABLE:-default}` references replaced by the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_influxdb_is_set_up_with_the_org_bucket_and_token_the_worker_writes_with() -> None:
    influx = {k: compose_default(v) for k, v in env("influxdb").items()}
    worker = {k: compose_default(v) for k, v in env("worker-sensors").items()}
    stack_port = re.search(r"PIPELINE_STACK_TIMESERIES_PORT:-(\d+)", STACK)

    configured = Settings(**_nested(worker)).timeseries
    assert configured.url == "http://influxdb:8086"
    assert influx["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert configured.org == influx["DOCKER_INFLUXDB_INIT_ORG"]
    assert configured.bucket == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert configured.token.get_secret_value() == influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    assert len(influx["DOCKER_INFLUXDB_INIT_PASSWORD"]) >= 8  # InfluxDB's setup refuses less
    assert SERVICES["influxdb"]["image"].startswith("influxdb:2.")
    assert SERVICES["influxdb"]["healthcheck"]["test"]
    assert SERVICES["worker-sensors"]["depends_on"]["influxdb"] == {"condition": "service_healthy"}
    assert stack_port is not None
    assert f"127.0.0.1:{stack_port[1]}:8086" in SERVICES["influxdb"]["ports"]


def test_grafana_has_an_influxdb_datasource_for_the_bucket_the_worker_writes() -> None:
    provisioning = ROOT / mounts("grafana")["/etc/grafana/provisioning"]
    [datasource] = yaml.safe_load((provisioning / "datasources" / "influxdb.yml").read_text())[
        "datasources"
    ]
    worker = Settings(**_nested(env("worker-sensors"))).timeseries
    grafana = {k: compose_default(v) for k, v in env("grafana").items()}

    assert datasource["type"] == "influxdb"
    assert datasource["url"] == worker.url
    assert datasource["jsonData"]["organization"] == worker.org
    assert datasource["jsonData"]["defaultBucket"] == worker.bucket
    token = datasource["secureJsonData"]["token"].removeprefix("$")
    assert grafana[token] == compose_default(env("worker-sensors")["PIPELINE_TIMESERIES__TOKEN"])
    assert SERVICES["grafana"]["depends_on"]["influxdb"] == {"condition": "service_healthy"}
