"""Monitoring on the real stack: the alert rules pass promtool's checks and unit tests, and
every Grafana dashboard's queries run on the stack's Prometheus, for every job the dashboards
offer, with data for the jobs whose workers process a stream while the API answers requests
(Grafana itself cannot run here)."""

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
from pipeline.entrypoints.jobs import JOBS
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
RUNNING = ("sensors", "sensor-aggregates")
"""The jobs this test runs workers of, on one stream of readings: one under database
authority (with the anomaly model scoring), one under Kafka authority."""
NOT_THEIRS = {
    "sensor-aggregates": {
        "Alerts raised per second by domain and detector": "it raises no alerts",
        "Alerts raised per second by kind and severity": "it raises no alerts",
        "Alerts raised per second by job, domain and detector": "it raises no alerts",
        "Scoring time per reading": "it scores nothing",
        "Retry-topic depth": "a job under Kafka authority has no retry topics",
    },
}
"""Panels of a running job that stay empty because the job does not do what they show."""


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
    job: str | None
    """The job the dashboard's `job` variable was set to (None: it has none)."""
    panel: str
    expr: str


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", ())  # inside a collapsed row


def substitute(expr: str, variables: dict[str, str]) -> str:
    # Longest names first: `$instance` is not `$in` followed by "stance".
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${name}", variables[name])
    return expr


def dashboard_queries(path: Path, job: str | None, variables: dict[str, str]) -> list[Query]:
    """Every panel query of the dashboard at `path`, its template variables substituted."""
    dashboard = json.loads(path.read_text())
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", ()):
            expr = substitute(target["expr"], variables)
            assert "$" not in expr, f"{path.name} / {panel['title']}: unsubstituted {expr}"
            found.append(Query(path.stem, job, panel["title"], expr))
    return found


def regex_literal(value: str) -> str:
    """`value` matching itself in a regex inside a PromQL string (Grafana's escaping of a
    multi-value variable's values: a doubled backslash before each special character)."""
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m[0], value)


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
def scraped(targets: Path, run: str, workers: list[str], api: str) -> Iterator[None]:
    """The stack's Prometheus scrapes this test's workers and API while the block runs."""
    files = {
        targets / f"workers-test-{run}.json": workers,
        targets / f"api-test-{run}.json": [api],
    }
    for path, addresses in files.items():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": addresses}]))
        tmp.rename(path)  # whole, for the file watcher
    try:
        yield
    finally:
        for path in files:
            path.unlink(missing_ok=True)


async def started(
    env: dict[str, str], errors: Path, entrypoint: str, *args: str
) -> asyncio.subprocess.Process:
    """`python -m pipeline.entrypoints.<entrypoint> <args>`, its stderr in the file `errors`
    (a pipe nobody reads until the end would fill up and stop the process)."""
    with errors.open("wb") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"pipeline.entrypoints.{entrypoint}", *args,
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The integration settings, with an aggregates topic of this test's own (the
    sensor-aggregates worker writes it)."""
    aggregates = f"{settings.topics.sensor_readings}-aggregates"
    topics = settings.topics.model_copy(update={"sensor_aggregates": aggregates})
    return settings.model_copy(update={"topics": topics})


@pytest.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    pipeline = await bootstrap(settings, migrate=True)
    await pipeline.ensure_topics()
    yield pipeline
    await pipeline.aclose()


async def test_every_dashboard_query_runs_for_every_job_with_data_for_the_running_ones(
    settings: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    prometheus = require_service("PIPELINE_STACK_PROMETHEUS_URL")
    targets = Path(require_service("PIPELINE_STACK_PROMETHEUS_TARGETS"))
    run = uuid.uuid4().hex[:8]
    workers = {job: f"127.0.0.1:{free_port()}" for job in RUNNING}
    api_address = f"127.0.0.1:{free_port()}"
    env = settings_env(settings) | {
        "PIPELINE_METRICS__SAMPLE_INTERVAL_S": "1",
        "PIPELINE_TOPICS__SENSOR_AGGREGATES": settings.topics.sensor_aggregates,
        "PIPELINE_ANOMALY__ENABLED": "true",  # the sensors job's model panels
        "PIPELINE_ANOMALY__STORE": "database",
    }
    processes = {}
    for job, address in workers.items():
        port = address.rpartition(":")[2]
        errors = tmp_path / f"{job}.err"
        processes[errors] = await started(env, errors, "worker", job, "--metrics-port", port)
    errors = tmp_path / "api.err"
    port = api_address.rpartition(":")[2]
    processes[errors] = await started(env, errors, "cli", "api", "--port", port)
    stop = asyncio.Event()
    load = [
        asyncio.create_task(stream(pipeline, stop)),
        asyncio.create_task(requests(f"http://{api_address}", stop)),
    ]
    try:
        with scraped(targets, run, list(workers.values()), api_address):
            async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:
                empty = await panels_without_data(client, workers, api_address)
    finally:
        stop.set()
        failed = [r for r in await asyncio.gather(*load, return_exceptions=True) if r is not None]
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            await asyncio.wait_for(process.wait(), 30)

    for errors, process in processes.items():
        assert process.returncode == 0, errors.read_text(errors="replace")[-2000:]
    assert not failed, failed
    assert not empty, "panels without data:\n" + "\n".join(empty)


async def panels_without_data(
    client: httpx.AsyncClient, workers: dict[str, str], api: str
) -> list[str]:
    """The panels of the running jobs (and the API) still without data once Prometheus has
    scraped this run for up to two minutes (every rate needs two scrapes in its interval);
    then every other registered job's queries, which must run but have no worker here. A
    query error fails at once."""
    for _ in range(60):
        results, empty = await run_dashboards(client, workers, api, [*workers])
        assert {q.dashboard for q, _ in results} == {"api", "job", "overview"}
        assert {q.job for q, _ in results} == {None, *workers}
        empty += sorted(
            f"{q.dashboard} ({q.job}) / {q.panel}: {q.expr}"
            for q, result in results
            if not finite(result)
            and q.panel not in MAY_BE_EMPTY
            and q.panel not in NOT_THEIRS.get(q.job or "", {})
        )
        if not empty:
            break
        await asyncio.sleep(2)
    else:
        return empty
    others = [job for job in JOBS if job not in workers]
    results, _ = await run_dashboards(client, workers, api, others)
    assert {q.job for q, _ in results} == {None, *others}
    return []


async def run_dashboards(
    client: httpx.AsyncClient, workers: dict[str, str], api: str, jobs: list[str]
) -> tuple[list[tuple[Query, list[dict[str, Any]]]], list[str]]:
    """Every query's result, a dashboard with a `job` variable once for each of `jobs`, and
    the template variables that do not offer a running job or its worker (yet)."""
    results = []
    missing = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        listed = dashboard["templating"]["list"]
        values: list[str | None] = [*jobs] if any(v["name"] == "job" for v in listed) else [None]
        for job in values:
            # A running job's panels are read on this run's worker only (a regex in Grafana's
            # query: an address matches itself); another job's on whatever the variable offers.
            ours = api if path.stem == "api" else workers.get(job or "")
            variables = {"__rate_interval": RATE_INTERVAL}
            for variable in listed:
                name = variable["name"]
                offered = await offers(client, variable, variables)
                if name == "job":
                    variables[name] = job or ""
                elif ours is not None:
                    variables[name] = ours
                else:  # Grafana's "All": every value offered, as Grafana escapes them
                    variables[name] = "({})".format("|".join(map(regex_literal, sorted(offered))))
                if ours is not None and variables[name] not in offered:
                    missing.append(f"{path.stem} ({job}): {name} does not offer {variables[name]}")
            queries = dashboard_queries(path, job, variables)
            results += [(q, await instant(client, q.expr)) for q in queries]
    return results, missing


async def offers(
    client: httpx.AsyncClient, variable: dict[str, Any], variables: dict[str, str]
) -> set[str]:
    """The values a query variable (`label_values(selector, label)`) offers, the variables
    before it substituted."""
    assert variable["type"] == "query", variable
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
    assert match, variable["query"]
    series = await instant(client, substitute(match[1], variables))
    return {s["metric"][match[2]] for s in series if match[2] in s["metric"]}
