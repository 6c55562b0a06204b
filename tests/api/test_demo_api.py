"""`pipeline demo` serves the API and the dashboard on its own embedded pipeline."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.entrypoints import cli
from tests.demo_process import demo_env, running_demo


def _get_until(
    url: str, ready: Callable[[httpx.Response], bool], timeout: float = 10.0
) -> httpx.Response:
    """GET `url` until `ready(response)` holds; the last response."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, timeout=5)
        if ready(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_the_demo_serves_health_readings_and_the_dashboard_then_exits_0(tmp_path: Path) -> None:
    with running_demo(tmp_path, ["--duration", "8"]) as demo:
        health = httpx.get(f"{demo.url}/health", timeout=5)
        latest = _get_until(
            f"{demo.url}/api/v1/sensors/latest",
            lambda r: r.status_code == 200 and r.json()["count"] > 0,
        )
        page = httpx.get(f"{demo.url}/", timeout=5)

        code = demo.wait(timeout=30)

    assert health.status_code == 200
    assert latest.status_code == 200
    assert latest.json()["count"] > 0
    assert page.status_code == 200
    assert 'id="chart"' in page.text
    assert code == 0
    assert any(line.startswith("demo summary") for line in demo.stdout)


def test_ctrl_c_stops_the_served_demo_cleanly(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        assert httpx.get(f"{demo.url}/health", timeout=5).status_code == 200

        demo.process.send_signal(signal.SIGINT)
        code = demo.wait(timeout=30)

    assert code == 0
    assert any(line.startswith("demo summary") for line in demo.stdout)
    assert not any("second interrupt" in line for line in demo.stderr)


def test_the_printed_url_names_the_port_actually_listening(tmp_path: Path) -> None:
    with running_demo(tmp_path, ["--duration", "30"]) as demo:
        port = int(demo.url.rsplit(":", 1)[1])

        assert port != 0
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_port_in_use_is_a_clear_error_not_a_traceback(tmp_path: Path, taken_port: int) -> None:
    db = tmp_path / "d.db"
    command = [sys.executable, "-m", "pipeline.entrypoints.cli", "demo", "--port", str(taken_port)]

    done = subprocess.run(
        [*command, "--duration", "1", "--db", str(db)],
        capture_output=True,
        text=True,
        env=demo_env(),
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert f"cannot serve the dashboard on 127.0.0.1:{taken_port}" in done.stderr
    assert "--no-api" in done.stderr
    assert "Traceback" not in done.stderr
    assert not db.exists()


def test_the_demo_serves_on_localhost_port_8000_by_default() -> None:
    args = cli.build_parser().parse_args(["demo"])

    assert (args.host, args.port, args.no_api) == ("127.0.0.1", 8000, False)


def test_no_api_turns_serving_off() -> None:
    assert cli.build_parser().parse_args(["demo", "--no-api"]).no_api is True


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_an_impossible_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["demo", "--port", port])

    assert exit_.value.code == 2
    assert "--port" in capsys.readouterr().err
