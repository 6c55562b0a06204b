"""`pipeline demo` as a child process, serving the API and the dashboard on a free port.

The child gets no `PIPELINE_…` variables: it runs the embedded pipeline (in-memory log and
registry, a SQLite file in the test's directory) whatever stack the test run has up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

URL_LINE = re.compile(r"^Dashboard: (?P<url>http://\S+?)/\s+API docs: (?P=url)/docs$")


@dataclass
class DemoProcess:
    """A running demo: its process, base URL (no trailing slash) and output so far."""

    process: subprocess.Popen[str]
    url: str
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def wait(self, timeout: float) -> int:
        """The exit code, waiting up to `timeout` seconds; the output is then complete."""
        code = self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout)
        return code


def demo_env() -> dict[str, str]:
    """The environment of the child: this one without the pipeline's settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}


def _pump(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


@contextmanager
def running_demo(
    tmp_path: Path, args: Sequence[str] = (), *, port: int = 0, start_timeout: float = 30.0
) -> Iterator[DemoProcess]:
    """Start `pipeline demo --port PORT …args` (default: a free port) and yield it once it
    prints its URL; on exit stop it with SIGINT (as Ctrl-C would) if it still runs."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pipeline.entrypoints.cli",
        "demo",
        "--port",
        str(port),
        "--db",
        str(tmp_path / "demo.db"),
        *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=demo_env(),
        cwd=tmp_path,
    )
    stdout: list[str] = []
    stderr: list[str] = []
    threads = [
        threading.Thread(target=_pump, args=(process.stdout, stdout), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, stderr), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        url = _wait_for_url(process, stdout, stderr, start_timeout)
        yield DemoProcess(process=process, url=url, stdout=stdout, stderr=stderr, readers=threads)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_url(
    process: subprocess.Popen[str], stdout: list[str], stderr: list[str], timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in stdout:
            if match := URL_LINE.match(line):
                return match["url"]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    tail = "\n".join(stderr[-20:])
    raise AssertionError(f"the demo printed no dashboard URL (exit {process.poll()}):\n{tail}")
