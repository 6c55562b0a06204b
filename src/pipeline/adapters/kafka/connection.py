"""`ConnectionWatch`: what librdkafka reports about reaching the brokers (its `error_cb`),
turned into one clear `ConfigurationError` when the settings are what is wrong.

librdkafka retries a refused login, an untrusted certificate or a listener speaking another
protocol for ever, logging each attempt; a client waiting for an answer would see a timeout
and a stream of log lines. A watched call instead fails at the first sign with one message
that says what to check.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any, Final

from confluent_kafka import KafkaError

from pipeline.application.errors import ConfigurationError

_MISMATCH_AFTER_S: Final = 2.0
"""How long every broker must have been unreachable while their ports accept connections
before the connection is judged a protocol mismatch (a broker that is restarting refuses
connections, it does not accept and close them)."""

_TLS_MISCONFIGURED: Final = (
    "certificate verify failed",
    "wrong version number",
    "packet length too long",
    "record layer failure",
)
"""Signs, in a TLS error, of settings that cannot work (an untrusted certificate, a listener
that does not speak TLS), rather than of a connection cut during the handshake."""


class ConnectionWatch:
    """Collects a client's connection errors; `problem()` says whether they mean bad settings.

    Pass `on_error` as the client's `error_cb` and call the client's `poll` to serve it;
    `problem()` is what it saw, `probe()` (when `probe_due()`) tells a listener speaking
    another protocol from brokers that are down.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._bootstrap = str(settings.get("bootstrap.servers", ""))
        self._protocol = str(settings.get("security.protocol", "PLAINTEXT")).upper()
        self._user = settings.get("sasl.username")
        self._mechanism = settings.get("sasl.mechanism", "GSSAPI")
        self._ca = settings.get("ssl.ca.location")
        self._problem: ConfigurationError | None = None
        self._all_down_since: float | None = None
        self._probed = False

    def on_error(self, error: KafkaError) -> None:
        """librdkafka's `error_cb`."""
        code = error.code()
        if code == KafkaError._AUTHENTICATION:
            self._problem = ConfigurationError(
                f"Kafka at {self._bootstrap} refused the {self._mechanism} credentials of user "
                f"{self._user!r}: check the user name and password (PIPELINE_KAFKA__SASL_USERNAME, "
                "PIPELINE_KAFKA__SASL_PASSWORD)"
            )
        elif code == KafkaError._SSL and any(sign in error.str() for sign in _TLS_MISCONFIGURED):
            self._problem = ConfigurationError(self._tls_message(error.str()))
        elif code == KafkaError._ALL_BROKERS_DOWN and self._all_down_since is None:
            self._all_down_since = time.monotonic()

    def answered(self) -> None:
        """A request was answered: the brokers are reachable as configured."""
        self._all_down_since = None

    def problem(self) -> ConfigurationError | None:
        """The settings error seen so far, if any."""
        return self._problem

    def probe_due(self) -> bool:
        """Whether every broker has been unreachable long enough (and not probed yet) for
        `probe` to tell a protocol mismatch from brokers that are down."""
        since = self._all_down_since
        return (
            self._problem is None
            and since is not None
            and not self._probed
            and time.monotonic() - since >= _MISMATCH_AFTER_S
        )

    def probe(self) -> ConfigurationError | None:
        """Blocking (a TCP connect to each bootstrap server, once): when the brokers accept
        connections that librdkafka finds unusable, the security protocol is wrong."""
        self._probed = True
        if any(_accepts(address) for address in self._bootstrap.split(",")):
            expected = (
                "SASL_SSL (with PIPELINE_KAFKA__SASL_MECHANISM, …__SASL_USERNAME, "
                "…__SASL_PASSWORD, …__SSL_CA_LOCATION)"
                if not self._protocol.startswith("SASL")
                else "PLAINTEXT or SSL"
            )
            self._problem = ConfigurationError(
                f"the Kafka brokers at {self._bootstrap} accept connections but close them "
                f"before answering: they do not speak {self._protocol}. Check "
                f"PIPELINE_KAFKA__SECURITY_PROTOCOL: the listener probably needs {expected}"
            )
        return self._problem

    def _tls_message(self, detail: str) -> str:
        if "certificate verify failed" in detail:
            return (
                f"the TLS certificate of the Kafka brokers at {self._bootstrap} is not signed "
                f"by a CA in {self._ca or 'the system trust store'}: set "
                "PIPELINE_KAFKA__SSL_CA_LOCATION to the CA file that signed the brokers' "
                "certificates"
            )
        reason = detail.split(": ", 1)[-1]
        return (
            f"the TLS handshake with the Kafka brokers at {self._bootstrap} failed ({reason}): "
            "check PIPELINE_KAFKA__SECURITY_PROTOCOL (the listener may not speak TLS) and "
            "PIPELINE_KAFKA__SSL_CA_LOCATION"
        )


def _accepts(address: str) -> bool:
    host, _, port = address.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False
