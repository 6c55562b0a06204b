"""`pipeline connect` and its pieces: the connector configs of the repository resolved from
the settings, and Connect's REST API with its errors translated (httpx.MockTransport)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from pydantic import SecretStr

from pipeline.adapters.connect.client import KafkaConnectClient
from pipeline.adapters.connect.configs import connector_configs, connectors_dir, slot_name
from pipeline.application.errors import ConfigurationError, ConnectorError
from pipeline.entrypoints import cli
from pipeline.entrypoints.connect import placeholder_values
from pipeline.entrypoints.settings import DatabaseSettings, Settings, TopicSettings

PG_URL = "postgresql+asyncpg://app:s3cret@db.example:6543/shop"


def settings(url: str = PG_URL) -> Settings:
    return Settings(
        database=DatabaseSettings(url=SecretStr(url)),
        topics=TopicSettings(sensor_metadata="meta-topic"),
    )


def test_the_repository_config_resolves_from_the_settings_and_keeps_the_password_out() -> None:
    configs = connector_configs(connectors_dir(), placeholder_values(settings()), prefix="team")

    config = configs["sensor-metadata"]
    assert config.name == "team-sensor-metadata"
    values = config.config
    assert values["database.hostname"] == "db.example"
    assert values["database.port"] == "6543"
    assert values["database.user"] == "app"
    assert values["database.dbname"] == "shop"
    assert values["transforms.route.replacement"] == "meta-topic"
    assert values["slot.name"] == "team_sensor_metadata"
    # Resolved by the Connect worker from its environment, never sent in the config.
    assert values["database.password"] == "${env:PIPELINE_CONNECT_DATABASE_PASSWORD}"
    assert "s3cret" not in json.dumps(values)


def test_the_connectors_stream_postgresql_only() -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL URL"):
        placeholder_values(settings("sqlite+aiosqlite:///x.db"))


def test_an_unknown_placeholder_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"a": "${pipeline:nope}"}')

    with pytest.raises(ConfigurationError, match=r"unknown placeholder \$\{pipeline:nope\}"):
        connector_configs(tmp_path, {}, prefix="p")


def test_a_config_must_be_an_object_of_strings(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"tasks.max": 1}')

    with pytest.raises(ConfigurationError, match="JSON object of strings"):
        connector_configs(tmp_path, {}, prefix="p")


def test_slot_names_are_what_postgresql_accepts() -> None:
    assert slot_name("E2E-ab12-Sensor.Metadata") == "e2e_ab12_sensor_metadata"
    assert len(slot_name("x" * 100)) == 63


def connect_api(handler: httpx.MockTransport) -> KafkaConnectClient:
    return KafkaConnectClient("http://connect:8083", transport=handler)


async def test_deploy_puts_the_config_and_says_whether_it_created_the_connector() -> None:
    seen: list[tuple[str, str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, json.loads(request.content)))
        return httpx.Response(201 if len(seen) == 1 else 200, json={})

    client = connect_api(httpx.MockTransport(handler))

    assert await client.deploy("c", {"a": "1"}) is True
    assert await client.deploy("c", {"a": "2"}) is False
    assert seen == [
        ("PUT", "/connectors/c/config", {"a": "1"}),
        ("PUT", "/connectors/c/config", {"a": "2"}),
    ]


async def test_an_invalid_config_is_refused_with_connects_message_on_one_line() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "error_code": 400,
                "message": "Connector configuration is invalid and contains the following 1 "
                'error(s):\nMissing required configuration "database.hostname"\n',
            },
        )

    client = connect_api(httpx.MockTransport(handler))

    with pytest.raises(ConnectorError) as refused:
        await client.deploy("c", {})
    message = str(refused.value)
    assert "HTTP 400" in message
    assert 'Missing required configuration "database.hostname"' in message
    assert "\n" not in message


async def test_an_unreachable_connect_says_where_it_looked_and_what_to_set() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = connect_api(httpx.MockTransport(handler))

    with pytest.raises(
        ConnectorError,
        match=r"cannot reach Kafka Connect at http://connect:8083.*PIPELINE_CONNECT__URL",
    ):
        await client.status("c")


async def test_a_rebalancing_cluster_is_asked_again() -> None:
    answers = iter([httpx.Response(409, json={"message": "rebalance"}), httpx.Response(204)])

    client = connect_api(httpx.MockTransport(lambda request: next(answers)))

    await client.restart("c")


async def test_status_of_a_failed_task_carries_the_first_line_of_its_trace() -> None:
    body = {
        "name": "c",
        "connector": {"state": "RUNNING", "worker_id": "w:8083"},
        "tasks": [
            {"id": 1, "state": "RUNNING", "worker_id": "w"},
            {
                "id": 0,
                "state": "FAILED",
                "worker_id": "w",
                "trace": "org.x.Boom: no slot\n\tat a.b",
            },
        ],
    }
    client = connect_api(httpx.MockTransport(lambda request: httpx.Response(200, json=body)))

    status = await client.status("c")

    assert status is not None
    assert status.tasks == ((0, "FAILED", "org.x.Boom: no slot"), (1, "RUNNING", ""))
    assert not status.running


async def test_status_of_an_unknown_connector_is_none_and_delete_says_so() -> None:
    client = connect_api(
        httpx.MockTransport(lambda request: httpx.Response(404, json={"message": "not found"}))
    )

    assert await client.status("c") is None
    assert await client.delete("c") is False


@pytest.fixture
def no_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("PIPELINE_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("no_services")
def test_connect_without_a_connect_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["connect", "status"]) == 2
    assert "PIPELINE_CONNECT__URL" in capsys.readouterr().err


@pytest.mark.usefixtures("no_services")
def test_an_unknown_connector_name_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_CONNECT__URL", "http://127.0.0.1:1")
    monkeypatch.setenv("PIPELINE_DATABASE__URL", PG_URL)

    assert cli.main(["connect", "deploy", "nope"]) == 2
    assert "no connector config 'nope' (known: sensor-metadata)" in capsys.readouterr().err


@pytest.mark.usefixtures("no_services")
def test_connect_down_is_a_failure_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_CONNECT__URL", "http://127.0.0.1:1")
    monkeypatch.setenv("PIPELINE_DATABASE__URL", PG_URL)

    assert cli.main(["connect", "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pipeline: error: cannot reach Kafka Connect at http://127.0.0.1:1")
    assert err.count("\n") == 1
