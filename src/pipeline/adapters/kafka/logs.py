"""librdkafka's logs and errors through the project's logging (structlog): deduplicated,
rate-limited, and a broker outage told once when it starts and once when it ends.

librdkafka reports an unreachable broker on every reconnect attempt of every connection of
every client (bootstrap, broker, group coordinator): a worker with four consumers printed
about 1,900 "Connection refused" lines in 30 s. `KafkaLogs` is the `logger`, `error_cb` and
`stats_cb` of every client of one `KafkaEventLog`:

- a connection failure (librdkafka's `FAIL` lines, transport errors) starts an outage of that
  broker address: one warning, `Kafka broker unreachable`, with the error and what to check;
  further failures are counted, not logged;
- the outage ends when a client's statistics show a connection to that broker up again: one
  info line, `Kafka broker reachable again`, with how long it lasted and the failures counted;
- anything else librdkafka says is logged once per `repeat_after_s` per message (numbers
  ignored), with how many times it was repeated in between.

Before the first connection of the process, failures are kept quiet for `grace_s`: a
command that cannot reach any broker then says so itself, in one line (see
`KafkaTopicAdmin`), instead of after a screen of warnings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import KafkaError

from pipeline.adapters.kafka.config import BROKER_DOWN_CODES

log = structlog.get_logger("pipeline.adapters.kafka")

WHAT_TO_CHECK = (
    "check that the broker is running (`scripts/stack up`), that "
    "PIPELINE_KAFKA__BOOTSTRAP_SERVERS names its host and port, and that the TLS/SASL "
    "settings (PIPELINE_KAFKA__SECURITY_PROTOCOL, PIPELINE_KAFKA__SASL_*, "
    "PIPELINE_KAFKA__OPTIONS) match its listener"
)

_THREAD = re.compile(r"^\[thrd:[^\]]*\]: ")
"""The `[thrd:…]: ` prefix of librdkafka's error strings."""
_ADDRESS = re.compile(r"^(?:GroupCoordinator: )?(?P<address>\S+?:\d+)(?:/\S*)?: ")
"""The broker a librdkafka message is about: `host:port/id: …` or `GroupCoordinator: …`."""
_NUMBERS = re.compile(r"\d+")
_CONNECTION_FAILURES = BROKER_DOWN_CODES | {KafkaError._AUTHENTICATION, KafkaError._SSL}
"""Errors after which a broker cannot be used until a new connection succeeds."""
_ALL_DOWN = "brokers are down"
_MAX_KEYS = 1_000


@dataclass(slots=True)
class _Outage:
    since: float
    failures: int
    first_error: str


class KafkaLogs:
    """The `logger`, `error_cb` and `stats_cb` of the librdkafka clients of one event log.

    Callbacks arrive on librdkafka's and the adapters' threads; everything is locked."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        grace_s: float = 10.0,
        repeat_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._servers = bootstrap_servers
        self._grace_s = grace_s
        self._repeat_after_s = repeat_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._outages: dict[str, _Outage] = {}
        self._told: set[str] = set()
        """Addresses whose current outage was logged."""
        self._connected = False
        self._held = False
        self._started = clock()
        self._last_failure: str | None = None
        self._repeats: dict[tuple[str, str], tuple[float, int]] = {}

    @property
    def last_failure(self) -> str | None:
        """The latest connection failure librdkafka reported about a broker, if any."""
        return self._last_failure

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Inside the block, note what librdkafka says without logging it (for a caller
        about to report the failure itself)."""
        self._held = True
        try:
            yield
        finally:
            self._held = False

    # -- librdkafka's hooks -------------------------------------------------------------

    def log(self, level: int, fmt: str, *args: object) -> None:
        """The `logger` hook: confluent-kafka calls `log(level, "%s [%s] %s", facility,
        client, message)` with a `logging` level."""
        if len(args) == 3:
            facility, client, message = (str(arg) for arg in args)
        else:
            facility, client, message = "", "", fmt % args if args else fmt
        if facility == "FAIL" or _ALL_DOWN in message:
            self.unreachable(message)
        else:
            self._repeating(level, facility, message, client=client)

    def error(self, error: KafkaError) -> None:
        """The `error_cb` hook (and the errors a consumer's poll returns)."""
        if error.code() in _CONNECTION_FAILURES:
            self.unreachable(error.str())
        else:
            level = logging.ERROR if error.fatal() else logging.WARNING
            self._repeating(level, "ERROR", error.str(), client="")

    def stats(self, statistics: str) -> None:
        """The `stats_cb` hook: a broker connection seen up ends its outage."""
        if self._connected and not self._outages:
            return  # the common case: nothing to learn, nothing to parse
        try:
            brokers = json.loads(statistics).get("brokers", {})
        except ValueError:
            return
        up = {
            str(broker.get("nodename", ""))
            for broker in brokers.values()
            if isinstance(broker, dict) and broker.get("state") == "UP"
        }
        if up:
            self.reachable(up)

    # -- what the adapters tell it --------------------------------------------------------

    def unreachable(self, message: str) -> None:
        """A connection to a broker failed (its address is taken from `message`)."""
        message = _THREAD.sub("", message)
        match = _ADDRESS.match(message)
        address = match["address"] if match else self._servers
        now = self._clock()
        with self._lock:
            if match or self._last_failure is None:
                self._last_failure = message
            outage = self._outages.get(address)
            if outage is None:
                outage = self._outages[address] = _Outage(now, 0, message)
            outage.failures += 1
            quiet = self._held or (not self._connected and now - self._started < self._grace_s)
            if quiet or address in self._told:
                return
            self._told.add(address)
            first_error = outage.first_error
        log.warning(
            "Kafka broker unreachable; retrying",
            broker=address,
            error=first_error,
            check=WHAT_TO_CHECK,
        )

    def reachable(self, addresses: set[str] | None = None) -> None:
        """Connections are up: to `addresses`, or (None) to the cluster as a whole."""
        now = self._clock()
        ended: list[tuple[str, _Outage]] = []
        with self._lock:
            self._connected = True
            for address in list(self._outages):
                if addresses is None or address in addresses or address == self._servers:
                    ended.append((address, self._outages.pop(address)))
            told = [(a, o) for a, o in ended if a in self._told]
            self._told -= {address for address, _ in ended}
        for address, outage in told:
            log.info(
                "Kafka broker reachable again",
                broker=address,
                after_s=round(now - outage.since, 1),
                failures=outage.failures,
            )

    def _repeating(self, level: int, facility: str, message: str, *, client: str) -> None:
        key = (facility, _NUMBERS.sub("#", message))
        now = self._clock()
        if self._held:
            return
        with self._lock:
            last, repeated = self._repeats.get(key, (float("-inf"), 0))
            if now - last < self._repeat_after_s:
                self._repeats[key] = (last, repeated + 1)
                return
            if len(self._repeats) >= _MAX_KEYS:
                self._repeats.clear()
            self._repeats[key] = (now, 0)
        fields: dict[str, object] = {"facility": facility, "client": client}
        if repeated:
            fields["repeated"] = repeated
        log.log(level, message, **fields)


STATISTICS_INTERVAL_MS = "2000"
"""How often clients report statistics (what ends an outage), unless configured."""


def with_logs(settings: dict[str, Any], logs: KafkaLogs) -> dict[str, Any]:
    """A client's librdkafka configuration with its logs, errors and statistics going to
    `logs`."""
    return {
        "statistics.interval.ms": STATISTICS_INTERVAL_MS,
        **settings,
        "logger": logs,
        "error_cb": logs.error,
        "stats_cb": logs.stats,
    }
