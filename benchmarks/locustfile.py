"""Load profile of the API: REST readers and WebSocket watchers (a benchmark, not a test).

Run headless against a served API (see the README, "Load test"):

    uv run locust -f benchmarks/locustfile.py --headless -u 100 -r 20 -t 60s \
        --host http://127.0.0.1:8000 --only-summary

`RestReader` issues the dashboard-style reads, weighted towards `/api/v1/sensors/latest`;
`LiveWatcher` (1 in 20 users) holds a WebSocket on `/ws/sensors` and reports every frame it
receives as a request named `ws <frame type>`, so the summary shows the stream's rate too.
Sensor ids follow the generator's naming (`temp-0001`, `hum-0001`, `pres-0001`, …).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import websocket
from locust import HttpUser, User, between, events, task

SENSOR_TYPES = ("temperature", "humidity", "pressure")
PREFIXES = ("temp", "hum", "pres")
SENSORS_PER_TYPE = 300


def _sensor_id() -> str:
    return f"{random.choice(PREFIXES)}-{random.randint(1, SENSORS_PER_TYPE):04d}"


class RestReader(HttpUser):
    """A client polling the REST endpoints, as a dashboard or a script does."""

    weight = 19
    wait_time = between(0.05, 0.2)

    @task(10)
    def latest(self) -> None:
        self.client.get("/api/v1/sensors/latest", params={"limit": 10}, name="latest")

    @task(3)
    def latest_of_type(self) -> None:
        params = {"sensor_type": random.choice(SENSOR_TYPES), "limit": 50}
        self.client.get("/api/v1/sensors/latest", params=params, name="latest?sensor_type")

    @task(2)
    def latest_of_sensor(self) -> None:
        params = {"sensor_id": _sensor_id(), "limit": 10}
        self.client.get("/api/v1/sensors/latest", params=params, name="latest?sensor_id")

    @task(2)
    def stats(self) -> None:
        params = {"time_window_minutes": random.choice((1, 5, 60))}
        self.client.get("/api/v1/sensors/stats", params=params, name="stats")

    @task(1)
    def anomalies(self) -> None:
        self.client.get("/api/v1/sensors/anomalies", params={"limit": 20}, name="anomalies")

    @task(1)
    def alerts(self) -> None:
        self.client.get("/api/v1/alerts", params={"limit": 20}, name="alerts")

    @task(1)
    def aggregates(self) -> None:
        sensor = _sensor_id()
        with self.client.get(
            f"/api/v1/sensors/{sensor}/aggregates", name="aggregates", catch_response=True
        ) as response:
            # A sensor the generator never produced is a correct 404, not a failure.
            if response.status_code == 404:
                response.success()


class LiveWatcher(User):
    """A dashboard holding the live stream open: it connects, reads frames for a while,
    and reconnects; every frame counts as one response of `ws <type>`."""

    weight = 1
    wait_time = between(1, 2)

    def on_start(self) -> None:
        base = self.host or "http://127.0.0.1:8000"
        self.url = base.replace("http://", "ws://").replace("https://", "wss://") + "/ws/sensors"

    @task
    def watch(self) -> None:
        started = time.perf_counter()
        try:
            socket = websocket.create_connection(self.url, timeout=10)
        except Exception as error:  # any failure to connect is a failed request
            self._report("ws connect", started, 0, error)
            return
        self._report("ws connect", started, 0, None)
        try:
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                received = time.perf_counter()
                text = socket.recv()
                frame: dict[str, Any] = json.loads(text)
                self._report(f"ws {frame.get('type', '?')}", received, len(text), None)
        except Exception as error:  # a broken stream is a failed request
            self._report("ws receive", time.perf_counter(), 0, error)
        finally:
            socket.close()

    def _report(self, name: str, started: float, size: int, error: Exception | None) -> None:
        events.request.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=size,
            exception=error,
            context={},
        )
