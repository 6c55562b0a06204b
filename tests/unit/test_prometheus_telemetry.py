"""The Prometheus adapter's own behaviour: the batch-at-a-time latency histogram, the alert
outbox's metrics, the live view's counters, and a worker's `/metrics` server."""

from __future__ import annotations

import socket
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.adapters.avro import alert_codec
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.adapters.telemetry.prometheus import AgeHistogram, PrometheusTelemetry
from pipeline.adapters.telemetry.server import serving_metrics
from pipeline.application.alerts import AlertRelay
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import TopicSpec
from pipeline.domain.alerts import (
    DEFAULT_THRESHOLDS,
    Alert,
    AlertDomain,
    AlertKind,
    check_thresholds,
)
from tests.api.conftest import reading
from tests.projection import writes_for

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_ages_of_a_whole_batch_land_in_their_cumulative_buckets() -> None:
    histogram = AgeHistogram("ages_seconds", "ages", "pipeline_job", (0.1, 1.0, 10.0))
    now_ms = 1_000_000.0

    histogram.observe_ages("sensors", [999_950, 999_700, 993_000, 900_000], now_ms)
    histogram.observe_ages("sensors", [999_990], now_ms)

    [family] = histogram.collect()
    got = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert got == {
        ("ages_seconds_bucket", "0.1"): 2,  # 0.05 s and 0.01 s
        ("ages_seconds_bucket", "1.0"): 3,  # + 0.3 s
        ("ages_seconds_bucket", "10.0"): 4,  # + 7 s
        ("ages_seconds_bucket", "+Inf"): 5,  # + 100 s
        ("ages_seconds_count", None): 5,
        ("ages_seconds_sum", None): pytest.approx(0.05 + 0.3 + 7 + 100 + 0.01),
    }


async def hot_alerts(store: InMemorySensorStore, count: int) -> list[Alert]:
    readings = [
        reading(T0 + timedelta(seconds=i), sensor=f"t-{i}", value=80.0) for i in range(count)
    ]
    alerts = [a for r in readings if (a := check_thresholds(r, DEFAULT_THRESHOLDS))]
    await writes_for(store).readings(readings, alerts=alerts)
    return alerts


class OutageLog(InMemoryEventLog):
    """The in-memory log, whose broker is away while `down` is set."""

    down = False

    async def flush(self, timeout: float = 30.0) -> None:
        if self.down:
            raise BrokerUnavailable("no broker answers")
        await super().flush(timeout)


async def relay_for(
    log: InMemoryEventLog, store: InMemorySensorStore
) -> tuple[AlertRelay, PrometheusTelemetry]:
    telemetry = PrometheusTelemetry()
    await log.ensure_topics([TopicSpec(name="alerts", partitions=1)])
    codec = alert_codec(InMemorySchemaRegistry(), "alerts")
    relay = AlertRelay(store=store, log=log, codec=codec, topic="alerts", telemetry=telemetry)
    return relay, telemetry


async def test_the_outbox_backlog_stays_while_the_broker_is_down_and_empties_after() -> None:
    store = InMemorySensorStore()
    await hot_alerts(store, 3)
    log = OutageLog()
    relay, telemetry = await relay_for(log, store)

    log.down = True
    with pytest.raises(BrokerUnavailable):
        await relay.relay()
    during = telemetry.registry.get_sample_value("pipeline_outbox_backlog_alerts")
    log.down = False
    await relay.relay()
    after = telemetry.registry.get_sample_value("pipeline_outbox_backlog_alerts")

    assert (during, after) == (3, 0)


async def test_alerts_raised_are_counted_by_domain_and_detector_never_by_source() -> None:
    store = InMemorySensorStore()
    alerts = await hot_alerts(store, 2)
    fraud = replace(alerts[0], domain=AlertDomain.PAYMENTS, kind=AlertKind.FRAUD, source="acc-9")
    relay, telemetry = await relay_for(InMemoryEventLog(), store)

    relay.raised("sensors", [*alerts, "not an alert"])
    relay.raised("payments", [fraud])

    def raised(job: str, domain: str, detector: str, kind: str) -> float | None:
        labels = {"pipeline_job": job, "domain": domain, "detector": detector, "kind": kind}
        return telemetry.registry.get_sample_value(
            "pipeline_alerts_raised_total", labels | {"severity": "critical"}
        )

    assert raised("sensors", "sensors", "threshold", "threshold_high") == 2
    assert raised("payments", "payments", "rule", "fraud") == 1
    body = telemetry.render().decode()
    assert "t-0" not in body
    assert "acc-9" not in body


def test_dropped_frames_count_up_from_each_hubs_own_total() -> None:
    telemetry = PrometheusTelemetry()

    telemetry.live_view(clients=2, dropped_total=5)
    telemetry.live_view(clients=1, dropped_total=8)
    telemetry.live_view(clients=0, dropped_total=2)  # a new hub (the app restarted)

    registry = telemetry.registry
    assert registry.get_sample_value("pipeline_websocket_dropped_frames_total") == 10
    assert registry.get_sample_value("pipeline_websocket_clients") == 0


def test_model_scoring_time_rows_and_current_version_are_reported() -> None:
    telemetry = PrometheusTelemetry()

    telemetry.model_scored(0.25, 1_000, "forest-1")
    telemetry.model_scored(0.5, 2_000, "forest-2")

    registry = telemetry.registry
    assert registry.get_sample_value("pipeline_model_scoring_seconds_total") == 0.75
    assert registry.get_sample_value("pipeline_model_scored_rows_total") == 3_000
    assert registry.get_sample_value("pipeline_model_info", {"version": "forest-2"}) == 1


def test_a_worker_serves_its_metrics_and_the_process_wide_ones_over_http() -> None:
    telemetry = PrometheusTelemetry()
    telemetry.alerts_raised(
        job="sensors",
        domain="sensors",
        detector="threshold",
        kind="threshold_low",
        severity="warning",
        count=1,
    )

    with serving_metrics(telemetry, host="127.0.0.1", port=0) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        body = urllib.request.urlopen(url, timeout=5).read().decode()

    assert (
        'pipeline_alerts_raised_total{detector="threshold",domain="sensors",kind="threshold_low",'
        'pipeline_job="sensors",severity="warning"} 1.0'
    ) in body
    assert "process_cpu_seconds_total" in body
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # stopped with it


def test_a_metrics_port_in_use_is_a_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        serving = serving_metrics(PrometheusTelemetry(), host="127.0.0.1", port=port)
        with pytest.raises(ConfigurationError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            serving.__enter__()
