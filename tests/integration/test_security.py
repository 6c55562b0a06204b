"""SASL/SCRAM over TLS with ACLs, on the stack's SASL_SSL listener (`scripts/stack up
--security`): the sensor pipeline end to end as its own principals, PostgreSQL over TLS
(verify-full); refusals that say in one line what to check; a write the ACLs do not allow
stops the worker as a configuration error; secrets never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.access import AccessRule, Operation, Pattern, Resource
from pipeline.application.errors import ConfigurationError
from pipeline.application.topic_names import dead_letter_topic
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings
from tests.integration.conftest import settings_env
from tests.integration.secured import as_user, grant, kafka_env, password
from tests.services import SASL_BOOTSTRAP, require_service

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PIPELINE = [sys.executable, "-m", "pipeline.entrypoints.cli"]
WORKER = [sys.executable, "-m", "pipeline.entrypoints.worker", "sensors", "--until-caught-up"]


@pytest.fixture
async def secured(settings: Settings) -> Settings:
    """`settings` with its topics created and its ACLs granted (as an administrator)."""
    require_service(SASL_BOOTSTRAP)
    admin = await bootstrap(settings)
    try:
        await admin.ensure_topics()
    finally:
        await admin.aclose()
    await grant(settings)
    return settings


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    env = settings_env(settings) | kafka_env(settings.kafka) | extra
    env["PGSSLROOTCERT"] = require_service("PGSSLROOTCERT")
    return env


def run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, check=False, env=env, capture_output=True, text=True, timeout=timeout
    )


def with_tls(settings: Settings) -> Settings:
    """`settings` with PostgreSQL over TLS, the server verified against the stack's CA."""
    url = settings.database.url.get_secret_value() + "?ssl=verify-full"
    database = settings.database.model_copy(update={"url": type(settings.database.url)(url)})
    return settings.model_copy(update={"database": database})


async def test_the_sensor_pipeline_runs_end_to_end_over_sasl_ssl_as_its_principals(
    secured: Settings,
) -> None:
    producer = await bootstrap(as_user(secured, "producer"))
    try:
        assert await produce_sensors(producer, count=2_000, rate=0, seed=3, sensors=20) == 2_000
    finally:
        await producer.aclose()

    worker = run(
        WORKER, env_of(with_tls(as_user(secured, "worker")), PIPELINE_LOG_LEVEL="DEBUG"), 240
    )

    assert worker.returncode == 0, worker.stderr[-3000:]
    admin = await bootstrap(secured)
    try:
        assert await admin.store.count_readings() == 2_000
    finally:
        await admin.aclose()
    output = worker.stdout + worker.stderr
    for user in ("worker", "producer", "api", "admin"):
        assert password(user) not in output


async def test_the_api_principal_may_read_but_not_write(secured: Settings) -> None:
    api = as_user(secured, "api")
    log = KafkaEventLog(api.kafka.bootstrap_servers or "", api.kafka.client_config(), timeout=20.0)
    try:
        assert await log.end_offsets(secured.topics.sensor_readings) == dict.fromkeys(range(6), 0)
        await log.publish(secured.topics.sensor_readings, b"k", b"v")
        with pytest.raises(ConfigurationError, match="may not write there") as refused:
            await log.flush(20)
    finally:
        await log.close()
    assert password("api") not in str(refused.value)


@pytest.fixture
def other_ca(tmp_path: Path) -> str:
    """A CA certificate that did not sign the brokers' certificates."""
    ca = tmp_path / "other-ca.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(tmp_path / "other-ca.key"), "-out", str(ca), "-subj", "/CN=other"),
        ],
        check=True,
        capture_output=True,
    )
    return str(ca)


@pytest.mark.parametrize(
    ("case", "hint"),
    [
        ("no credentials", "they do not speak PLAINTEXT"),
        ("wrong password", "refused the SCRAM-SHA-512 credentials of user 'worker'"),
        ("another CA", "is not signed by a CA in"),
    ],
)
def test_a_refused_connection_is_one_line_that_says_what_to_check(
    secured: Settings, other_ca: str, case: str, hint: str
) -> None:
    wrong = "not-the-password-0123"
    client = {
        "no credentials": as_user(secured, None, protocol="PLAINTEXT"),
        "wrong password": as_user(secured, "worker", secret=wrong),
        "another CA": as_user(secured, "worker", ca_file=other_ca),
    }[case]

    # Well before the 30 s a request waits for a broker: the first sign is enough.
    done = run([*PIPELINE, "topics", "create"], env_of(client), timeout=25)

    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("pipeline: error: ")
    assert hint in done.stderr
    assert wrong not in done.stderr
    assert password("worker") not in done.stderr


async def test_a_write_the_acls_refuse_stops_the_worker_as_a_configuration_error(
    settings: Settings,
) -> None:
    # ACLs need the authorizer of the stack started with security.
    require_service(SASL_BOOTSTRAP)
    admin = await bootstrap(settings)
    try:
        await admin.ensure_topics()
        await admin.log.publish(settings.topics.sensor_readings, b"sensor", b"not avro")
        await admin.log.flush()
    finally:
        await admin.aclose()
    dlq = dead_letter_topic(settings.topics.sensor_readings)
    write_dlq = AccessRule(
        principal="User:worker",
        resource=Resource.TOPIC,
        pattern=Pattern.LITERAL,
        name=dlq,
        operation=Operation.WRITE,
    )
    # The worker may see the dead-letter topic, not write it.
    await grant(settings, instead={write_dlq: replace(write_dlq, operation=Operation.DESCRIBE)})

    worker = run(WORKER, env_of(as_user(settings, "worker")), 120)

    assert worker.returncode == 1
    assert "may not write there" in worker.stderr
    assert dlq in worker.stderr
    # Stopped at the first refusal, not retried: a handful of lines, not a stream.
    assert worker.stderr.count("\n") < 10, worker.stderr


def test_pipeline_config_masks_the_sasl_password(settings: Settings) -> None:
    shown = run([*PIPELINE, "config"], env_of(as_user(settings, "worker")), 60)

    assert shown.returncode == 0
    assert password("worker") not in shown.stdout
    assert json.loads(shown.stdout)["kafka"]["sasl_password"] == "**********"
    assert os.environ.get("PIPELINE_KAFKA__SASL_PASSWORD") is None
