"""A private PostgreSQL 15 cluster for tests that stop and start the database: the shared
stack's server is never touched (other tests use it). The binaries are the ones
`scripts/stack` uses: PIPELINE_STACK_PG_BIN, else /usr/lib/postgresql/15/bin."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.services import PG_ADMIN, require_service, services_required

_CANDIDATES = (os.environ.get("PIPELINE_STACK_PG_BIN", ""), "/usr/lib/postgresql/15/bin")


def _pg_bin() -> Path:
    for candidate in _CANDIDATES:
        path = Path(candidate) if candidate else None
        if path and all((path / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return path
    # Missing binaries are a missing service: skipped, or failed under CI.
    message = "PostgreSQL 15 binaries not found: set PIPELINE_STACK_PG_BIN"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """initdb into a fresh directory, then start/stop it with pg_ctl on a free port.

    Runs as the `postgres` OS user when the tests run as root (the server refuses root).
    Trust authentication on 127.0.0.1 only: the cluster lives for one test."""

    def __init__(self) -> None:
        require_service(PG_ADMIN)  # the real stack is up (and so are its binaries)
        self._bin = _pg_bin()
        self._root = Path(tempfile.mkdtemp(prefix="pipeline-pg-"))
        self._data = self._root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            self._root.chmod(0o755)
            shutil.chown(self._root, "postgres", "postgres")
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        """SQLAlchemy asyncpg URL of the cluster's `postgres` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories=''"
        log = str(self._root / "postgres.log")
        self._run("pg_ctl", "-D", str(self._data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop the server at once: open connections are cut, as in a crash or failover."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and delete the cluster."""
        if (self._data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self._root, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(self._bin / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        # Output to a file, not a pipe: the server pg_ctl starts must not hold our pipe open.
        with (self._root / "pg_ctl.out").open("ab") as out:
            subprocess.run(
                command,
                check=check,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=60,
                start_new_session=True,
            )
