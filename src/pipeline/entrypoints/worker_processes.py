"""`pipeline-worker <job> --processes N`: N members of the job's consumer group, one per
process, supervised by the process that was started.

Each member is a fresh interpreter running `pipeline-worker <job>` with the same arguments
(Python runs one thread of Python at a time: one process per core is how a job uses more than
one). The members share the group, so Kafka divides the partitions among them, and every
batch commits as it does with one worker. The supervisor:

- forwards SIGTERM and SIGINT to every member once (each finishes its batch, commits, and
  leaves the group); a second signal is forwarded too, and a member that gets two exits at
  once. The members run in their own process group, so a Ctrl-C in a terminal reaches them
  only through the supervisor, once;
- fails the whole when one member fails: the others are stopped as above and the
  supervisor exits with the failed member's code, naming it. Nothing is restarted here: a
  member that failed once (an unreachable database, a fenced zombie, a bug) would most
  likely fail again, and restarting is the service manager's job (systemd, Kubernetes),
  which then restarts the group;
- with `--until-caught-up`, exits 0 once every member has (each when its partitions have no
  lag);
- gives member i its own metrics port (`--metrics-port P` → P + i; 0: each a free port) and
  its own static membership (`PIPELINE_WORKER__INSTANCE_ID=ID` → `ID-i`), and writes
  `--stats-json` once, the members' counters summed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK

__all__ = ["run_processes"]

INSTANCE_ID = "PIPELINE_WORKER__INSTANCE_ID"


def member_command(args: argparse.Namespace, index: int, stats: Path | None) -> list[str]:
    """The command line of member `index`: the worker's own arguments, without
    `--processes`, with its own metrics port and stats file."""
    command = [sys.executable, "-m", "pipeline.entrypoints.worker", args.name]
    if args.until_caught_up:
        command.append("--until-caught-up")
    if args.group_id is not None:
        command += ["--group-id", args.group_id]
    if stats is not None:
        command += ["--stats-json", str(stats)]
    if args.metrics_port is not None:
        port = args.metrics_port + index if args.metrics_port else 0
        command += ["--metrics-port", str(port)]
    return command


def member_environment(index: int) -> dict[str, str]:
    """The environment of member `index`: this one, with its own static member id."""
    env = dict(os.environ)
    if env.get(INSTANCE_ID):
        env[INSTANCE_ID] = f"{env[INSTANCE_ID]}-{index}"
    return env


def summed(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The members' summaries as one: numbers and per-name counts added up."""
    total: dict[str, Any] = {}
    for summary in summaries:
        for key, value in summary.items():
            if isinstance(value, dict):
                total[key] = dict(Counter(total.get(key, {})) + Counter(value))
            else:
                total[key] = round(total.get(key, 0) + value, 1)
    return total


async def run_processes(args: argparse.Namespace) -> int:
    """Run `args.processes` members of the worker `args` names; return the exit code."""
    with tempfile.TemporaryDirectory(prefix="pipeline-worker-") as scratch:
        stats = [
            Path(scratch) / f"member-{i}.json" if args.stats_json is not None else None
            for i in range(args.processes)
        ]
        members = [
            await asyncio.create_subprocess_exec(
                *member_command(args, i, stats[i]), env=member_environment(i), process_group=0
            )
            for i in range(args.processes)
        ]
        code = await _supervise(members)
        if code == EXIT_OK and args.stats_json is not None:
            parts = [json.loads(path.read_text()) for path in stats if path is not None]
            args.stats_json.write_text(json.dumps(summed(parts), indent=2) + "\n")
    return code


async def _supervise(members: list[asyncio.subprocess.Process]) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def forward() -> None:
        stopping.set()
        for member in members:
            if member.returncode is None:
                member.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, forward)
    try:
        waits = {asyncio.ensure_future(member.wait()): i for i, member in enumerate(members)}
        pending = set(waits)
        failed: tuple[int, int] | None = None
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for ended in done:
                code = ended.result()
                if code != EXIT_OK and failed is None:
                    failed = (waits[ended], code)
                    if not stopping.is_set():
                        forward()
        if failed is None:
            return EXIT_OK
        index, code = failed
        sys.stderr.write(
            f"pipeline-worker: error: process {index + 1} of {len(members)} (pid "
            f"{members[index].pid}) exited with code {code}; the others were stopped\n"
        )
        return code if code > 0 else EXIT_FAILURE
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for member in members:
            if member.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    member.kill()
                await member.wait()
