"""librdkafka's logs through `KafkaLogs`: a broker outage is one warning when it starts and
one info line when it ends, with the failures counted; anything else is logged once a
minute with its repeats; failures before the first connection stay quiet for a grace
period (the command says it itself)."""

from __future__ import annotations

import json
import logging

from confluent_kafka import KafkaError
from structlog.testing import capture_logs

from pipeline.adapters.kafka.logs import KafkaLogs

REFUSED = (
    "127.0.0.1:19092/1: Connect to ipv4#127.0.0.1:19092 failed: Connection refused "
    "(after 0ms in state CONNECT)"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def statistics(**states: str) -> str:
    """A librdkafka statistics document with brokers `nodename=state`."""
    return json.dumps(
        {
            "brokers": {
                f"{name}/1": {"nodename": name, "state": state} for name, state in states.items()
            }
        }
    )


def connected_logs(clock: FakeClock) -> KafkaLogs:
    logs = KafkaLogs("127.0.0.1:19092", grace_s=10, clock=clock)
    logs.stats(statistics(**{"127.0.0.1:19092": "UP"}))
    return logs


def test_an_outage_is_one_warning_then_one_info_line_with_how_long_and_how_many() -> None:
    clock = FakeClock()
    logs = connected_logs(clock)

    with capture_logs() as lines:
        for _ in range(1_900):
            logs.log(logging.ERROR, "%s [%s] %s", "FAIL", "pipeline#consumer-1", REFUSED)
            logs.error(KafkaError(KafkaError._TRANSPORT, REFUSED))
        clock.now += 31
        logs.stats(statistics(**{"127.0.0.1:19092": "DOWN"}))
        logs.stats(statistics(**{"127.0.0.1:19092": "UP"}))

    assert [(line["log_level"], line["event"]) for line in lines] == [
        ("warning", "Kafka broker unreachable; retrying"),
        ("info", "Kafka broker reachable again"),
    ]
    assert lines[0]["broker"] == "127.0.0.1:19092"
    assert lines[0]["error"] == REFUSED
    assert "scripts/stack up" in lines[0]["check"]
    assert (lines[1]["after_s"], lines[1]["failures"]) == (31.0, 3_800)


def test_a_second_outage_is_told_again() -> None:
    logs = connected_logs(FakeClock())

    with capture_logs() as lines:
        for _ in range(2):
            logs.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", REFUSED)
            logs.stats(statistics(**{"127.0.0.1:19092": "UP"}))

    assert [line["event"] for line in lines] == [
        "Kafka broker unreachable; retrying",
        "Kafka broker reachable again",
    ] * 2


def test_one_broker_down_is_not_ended_by_another_one_up() -> None:
    logs = connected_logs(FakeClock())
    other = REFUSED.replace("19092", "19094")

    with capture_logs() as lines:
        logs.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", other)
        logs.stats(statistics(**{"127.0.0.1:19092": "UP", "127.0.0.1:19094": "DOWN"}))

    assert [(line["event"], line["broker"]) for line in lines] == [
        ("Kafka broker unreachable; retrying", "127.0.0.1:19094")
    ]


def test_the_thread_prefix_of_an_error_is_not_taken_for_its_broker() -> None:
    logs = connected_logs(FakeClock())

    with capture_logs() as lines:
        logs.error(KafkaError(KafkaError._TRANSPORT, f"[thrd:127.0.0.1:19092/1]: {REFUSED}"))

    assert [(line["broker"], line["error"]) for line in lines] == [("127.0.0.1:19092", REFUSED)]


def test_other_messages_are_logged_once_per_minute_with_their_repeats() -> None:
    clock = FakeClock()
    logs = connected_logs(clock)

    with capture_logs() as lines:
        for attempt in range(100):
            clock.now += 1
            logs.log(
                logging.WARNING,
                "%s [%s] %s",
                "GETPID",
                "pipeline#producer-1",
                f"Failed to acquire PID after {attempt} ms: Coordinator load in progress",
            )

    assert [(line["log_level"], line.get("repeated")) for line in lines] == [
        ("warning", None),
        ("warning", 59),
    ]
    assert lines[0]["event"].startswith("Failed to acquire PID after 0 ms")
    assert lines[0]["facility"] == "GETPID"


def test_failures_before_any_connection_stay_quiet_for_the_grace_period() -> None:
    clock = FakeClock()
    logs = KafkaLogs("127.0.0.1:19092", grace_s=10, clock=clock)

    with capture_logs() as lines:
        logs.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", REFUSED)
        quiet = list(lines)
        clock.now += 11
        logs.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", REFUSED)

    assert quiet == []
    assert [line["event"] for line in lines] == ["Kafka broker unreachable; retrying"]
    assert logs.last_failure == REFUSED


def test_failures_while_held_are_counted_not_logged() -> None:
    logs = connected_logs(FakeClock())

    with capture_logs() as lines, logs.held():
        logs.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", REFUSED)

    assert lines == []
    assert logs.last_failure == REFUSED
