"""Monitoring on the real stack: the alert rules pass promtool's checks and unit tests, and
every Grafana dashboard's queries run on the stack's Prometheus, with data, while a worker
processes a stream and the API answers requests (Grafana itself cannot run here)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import Settings
from tests.api.conftest import reading
from tests.integration.conftest import settings_env
from tests.services import require_service

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
RATE_INTERVAL = "1m"
"""What Grafana's $__rate_interval becomes here (at least four scrape intervals of 5 s)."""
MAY_BE_EMPTY = {
    "Records moved to retry topics per second": "needs a batch failing while its database answers",
    "In-place retries per second by error class": "needs a database or broker outage",
}
"""Panels with no series in a healthy run, and what it takes to fill them."""


def promtool() -> str:
    return require_service("PIPELINE_STACK_PROMTOOL")


def test_the_prometheus_config_and_alert_rules_are_valid() -> None:
    prometheus = MONITORING / "prometheus"

    config = subprocess.run(
        [promtool(), "check", "config", "prometheus.yml"],
        cwd=prometheus, capture_output=True, text=True, check=False,
    )  # fmt: skip
    rules = subprocess.run(
        [promtool(), "check", "rules", *sorted(map(str, (prometheus / "rules").glob("*.yml")))],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert config.returncode == 0, config.stdout + config.stderr
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 6 rules found" in rules.stdout


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", "tests/pipeline.test.yml"],
        cwd=MONITORING / "prometheus", capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# ------------------------------------------------------------------------------ dashboards


@dataclass(frozen=True, slots=True)
class Query:
    dashboard: str
    panel: str
    expr: str


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", ())  # inside a row


def dashboard_queries(path: Path, variables: dict[str, str]) -> list[Query]:
    """Every panel query of the dashboard at `path`, its template variables substituted."""
    dashboard = json.loads(path.read_text())
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", ()):
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(f"${name}", value)
            assert "$" not in expr, f"{path.name} / {panel['title']}: unsubstituted {expr}"
            found.append(Query(path.stem, panel["title"], expr))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def instant(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    """The result of an instant query; an error of Prometheus' fails the test."""
    answer = (await client.get("/api/v1/query", params={"query": expr})).json()
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def finite(result: list[dict[str, Any]]) -> bool:
    return any(s["value"][1] not in ("NaN", "+Inf", "-Inf") for s in result)


async def stream(pipeline: Pipeline, stop: asyncio.Event) -> None:
    """Readings at about 200/s, with what fills every panel: alerts (hot readings), dead
    letters (out of range, and undecodable), late records (two hours behind)."""
    topic = pipeline.settings.topics.sensor_readings
    codec = pipeline.reading_codec
    i = 0
    while not stop.is_set():
        now = datetime.now(UTC)
        for n in range(20):
            sensor = f"temp-{n:03d}"
            value = 80.0 if (i + n) % 97 == 0 else 21.0 + n % 5
            await pipeline.log.publish(
                topic, sensor.encode(), await codec.encode(reading(now, sensor=sensor, value=value))
            )
        late = reading(now - timedelta(hours=2), sensor="temp-001")
        await pipeline.log.publish(topic, b"temp-001", await codec.encode(late))
        out_of_range = reading(now, sensor="temp-002", value=5000.0)
        await pipeline.log.publish(topic, b"temp-002", await codec.encode(out_of_range))
        await pipeline.log.publish(topic, b"temp-003", b"not avro")
        await pipeline.log.flush()
        i += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def requests(api: str, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):  # still starting
                await client.get("/api/v1/sensors/latest")
                await client.get("/api/v1/alerts")
                await client.get("/health")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


@contextlib.contextmanager
def scraped(targets: Path, run: str, workers: str, api: str) -> Iterator[None]:
    """The stack's Prometheus scrapes this test's worker and API while the block runs."""
    files = {
        targets / f"workers-test-{run}.json": workers,
        targets / f"api-test-{run}.json": api,
    }
    for path, address in files.items():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [address]}]))
        tmp.rename(path)  # whole, for the file watcher
    try:
        yield
    finally:
        for path in files:
            path.unlink(missing_ok=True)


@pytest.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    pipeline = await bootstrap(settings, migrate=True)
    await pipeline.ensure_topics()
    yield pipeline
    await pipeline.aclose()


async def test_every_dashboard_query_runs_with_data_while_a_worker_processes(
    settings: Settings, pipeline: Pipeline
) -> None:
    prometheus = require_service("PIPELINE_STACK_PROMETHEUS_URL")
    targets = Path(require_service("PIPELINE_STACK_PROMETHEUS_TARGETS"))
    run = uuid.uuid4().hex[:8]
    worker_address = f"127.0.0.1:{free_port()}"
    api_address = f"127.0.0.1:{free_port()}"
    env = settings_env(settings) | {"PIPELINE_METRICS__SAMPLE_INTERVAL_S": "1"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline.entrypoints.worker", "sensors",
        "--metrics-port", worker_address.rpartition(":")[2],
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    api = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline.entrypoints.cli", "api",
        "--port", api_address.rpartition(":")[2],
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stop = asyncio.Event()
    load = [
        asyncio.create_task(stream(pipeline, stop)),
        asyncio.create_task(requests(f"http://{api_address}", stop)),
    ]
    try:
        with scraped(targets, run, worker_address, api_address):
            async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:
                empty = await panels_without_data(client, worker_address, api_address)
    finally:
        stop.set()
        failed = [r for r in await asyncio.gather(*load, return_exceptions=True) if r is not None]
        for process in (worker, api):
            process.terminate()
        errors = [(await asyncio.wait_for(p.communicate(), 30))[1] for p in (worker, api)]

    for process, err in zip((worker, api), errors, strict=True):
        assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    assert not failed, failed
    assert not empty, "panels without data:\n" + "\n".join(empty)


async def panels_without_data(client: httpx.AsyncClient, worker: str, api: str) -> list[str]:
    """The panels still without data once Prometheus has scraped this run for up to two
    minutes (a query error fails at once): every rate needs two scrapes in its interval."""
    for _ in range(60):
        results, empty = await run_dashboards(client, worker, api)
        assert {q.dashboard for q, _ in results} == {"api", "job-sensors", "overview"}
        empty += sorted(
            f"{q.dashboard} / {q.panel}: {q.expr}"
            for q, result in results
            if not finite(result) and q.panel not in MAY_BE_EMPTY
        )
        if not empty:
            return []
        await asyncio.sleep(2)
    return empty


async def run_dashboards(
    client: httpx.AsyncClient, worker: str, api: str
) -> tuple[list[tuple[Query, list[dict[str, Any]]]], list[str]]:
    """Every query's result, and the template variables that do not offer this run's value
    (yet)."""
    results = []
    missing = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        instance = api if path.stem == "api" else worker
        # A regex in Grafana's query; an address matches itself.
        variables = {"__rate_interval": RATE_INTERVAL, "instance": instance}
        for variable in dashboard["templating"]["list"]:
            name = variable["name"]
            if variable["type"] == "constant":
                variables[name] = variable["query"]
            elif name != "instance":
                variables[name] = "sensors"
            if not await offers(client, variable, variables[name]):
                missing.append(f"{path.stem}: variable {name} does not offer {variables[name]}")
        results += [(q, await instant(client, q.expr)) for q in dashboard_queries(path, variables)]
    return results, missing


async def offers(client: httpx.AsyncClient, variable: dict[str, Any], value: str) -> bool:
    """Whether a query variable (`label_values(selector, label)`) offers `value`."""
    if variable["type"] != "query":
        return True
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
    assert match, variable["query"]
    series = await instant(client, match[1])
    return value in {s["metric"].get(match[2]) for s in series}
