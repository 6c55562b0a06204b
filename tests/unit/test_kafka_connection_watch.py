"""`ConnectionWatch`: librdkafka's connection errors turned into one ConfigurationError that
says what to check — the credentials, the CA, the security protocol — and nothing for brokers
that are merely down."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError

from pipeline.adapters.kafka import connection
from pipeline.adapters.kafka.connection import ConnectionWatch

SASL = {
    "bootstrap.servers": "127.0.0.1:1",
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "worker",
    "sasl.password": "very-secret-password",
    "ssl.ca.location": "/etc/ca.pem",
}


def test_refused_credentials_name_the_user_and_the_settings_never_the_password() -> None:
    watch = ConnectionWatch(SASL)

    watch.on_error(
        KafkaError(
            KafkaError._AUTHENTICATION,
            "sasl_ssl://127.0.0.1:1/bootstrap: SASL authentication error: Authentication "
            "failed during authentication due to invalid credentials",
        )
    )

    problem = str(watch.problem())
    assert "refused the SCRAM-SHA-512 credentials of user 'worker'" in problem
    assert "PIPELINE_KAFKA__SASL_PASSWORD" in problem
    assert "very-secret-password" not in problem


def test_an_untrusted_certificate_names_the_ca_file_to_fix() -> None:
    watch = ConnectionWatch(SASL)

    watch.on_error(
        KafkaError(
            KafkaError._SSL,
            "sasl_ssl://127.0.0.1:1/bootstrap: SSL handshake failed: error:0A000086:SSL "
            "routines::certificate verify failed: broker certificate could not be verified",
        )
    )

    assert "is not signed by a CA in /etc/ca.pem" in str(watch.problem())


def test_a_tls_connection_cut_during_the_handshake_is_not_a_settings_problem() -> None:
    watch = ConnectionWatch(SASL)

    watch.on_error(KafkaError(KafkaError._SSL, "SSL handshake failed: Disconnected"))

    assert watch.problem() is None


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "_MISMATCH_AFTER_S", 0.0)


@pytest.mark.usefixtures("no_grace")
def test_brokers_that_accept_connections_but_never_answer_speak_another_protocol(
    listening_port: int,
) -> None:
    watch = ConnectionWatch({"bootstrap.servers": f"127.0.0.1:{listening_port}"})
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))

    assert watch.probe_due()
    problem = str(watch.probe())

    assert "accept connections but close them before answering" in problem
    assert "they do not speak PLAINTEXT" in problem
    assert "SASL_SSL" in problem
    assert not watch.probe_due()  # probed once


@pytest.mark.usefixtures("no_grace")
def test_brokers_that_refuse_connections_are_down_not_misconfigured() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    watch = ConnectionWatch({"bootstrap.servers": f"127.0.0.1:{port}"})
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))

    assert watch.probe() is None
    assert watch.problem() is None


def test_an_answer_clears_an_earlier_outage() -> None:
    watch = ConnectionWatch({"bootstrap.servers": "127.0.0.1:1"})
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))

    watch.answered()

    assert not watch.probe_due()
