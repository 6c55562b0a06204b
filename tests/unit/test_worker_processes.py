"""`pipeline-worker <job> --processes N`: the supervisor of the N members (no broker: the
members here are small scripts standing in for workers)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from pipeline.entrypoints.worker import build_parser
from pipeline.entrypoints.worker_processes import (
    _supervise,
    member_command,
    member_environment,
    summed,
)

# A member that runs until SIGTERM, then exits 0 as a worker does after its last commit; it
# writes a file once its handler is installed so the test knows it is listening.
UNTIL_STOPPED = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
pathlib.Path(sys.argv[1]).touch()
while True:
    time.sleep(0.05)
"""


async def member(code: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-c", code, *args)


async def listening(*ready: Path) -> None:
    while not all(path.exists() for path in ready):
        await asyncio.sleep(0.02)


def worker_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["sensors", *argv])


async def test_a_member_that_fails_stops_the_others_and_its_code_is_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ready = tmp_path / "ready"
    running = await member(UNTIL_STOPPED, str(ready))
    await asyncio.wait_for(listening(ready), 20)
    failing = await member("import sys; sys.exit(69)")

    code = await asyncio.wait_for(_supervise([running, failing]), 20)

    assert code == 69
    assert running.returncode == 0  # stopped by SIGTERM, cleanly
    assert "process 2 of 2" in capsys.readouterr().err


async def test_sigterm_to_the_supervisor_stops_every_member_cleanly(tmp_path: Path) -> None:
    ready = [tmp_path / "a", tmp_path / "b"]
    members = [await member(UNTIL_STOPPED, str(path)) for path in ready]
    await asyncio.wait_for(listening(*ready), 20)
    supervising = asyncio.create_task(_supervise(members))
    await asyncio.sleep(0)  # the supervisor's signal handlers are installed

    os.kill(os.getpid(), signal.SIGTERM)
    code = await asyncio.wait_for(supervising, 20)

    assert code == 0
    assert [m.returncode for m in members] == [0, 0]


async def test_members_that_all_finish_end_the_run_with_0() -> None:
    members = [await member("pass"), await member("pass")]

    assert await asyncio.wait_for(_supervise(members), 20) == 0


def test_each_member_runs_the_same_job_and_group_without_processes() -> None:
    args = worker_args("--processes", "3", "--group-id", "g", "--until-caught-up")

    command = member_command(args, 2, None)

    assert command[1:] == [
        "-m", "pipeline.entrypoints.worker", "sensors", "--until-caught-up", "--group-id", "g",
    ]  # fmt: skip


@pytest.mark.parametrize(("given", "expected"), [("9100", "9102"), ("0", "0")])
def test_member_i_serves_metrics_on_the_port_plus_i(given: str, expected: str) -> None:
    args = worker_args("--processes", "3", "--metrics-port", given)

    command = member_command(args, 2, None)

    assert command[command.index("--metrics-port") + 1] == expected


def test_member_i_has_its_own_static_member_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_WORKER__INSTANCE_ID", "host-a")

    assert member_environment(1)["PIPELINE_WORKER__INSTANCE_ID"] == "host-a-1"


def test_the_stats_of_the_members_are_summed() -> None:
    a = {"records": 10, "written": {"readings": 10}, "paused_seconds": 0.5}
    b = {"records": 5, "written": {"readings": 4, "alerts": 1}, "paused_seconds": 0.25}

    assert summed([a, b]) == {
        "records": 15,
        "written": {"readings": 14, "alerts": 1},
        "paused_seconds": 0.8,
    }


def test_processes_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        worker_args("--processes", "0")
