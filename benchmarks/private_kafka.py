"""A private single-node Kafka (KRaft) broker for benchmarks that must stop and start a broker
without touching the shared stack: the jars `scripts/stack` downloaded, its own ports and data
directory, killed and restarted at will.

The jars are taken from `$PIPELINE_STACK_DIR/kafka/libs` (default: the repository's
`.stack/kafka/libs`; run `scripts/stack up` once to fetch them), Java from
`$PIPELINE_STACK_JAVA` or the first Java 17 found.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JAVAS = ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "/usr/lib/jvm/openjdk-17/bin/java")


def free_port() -> int:
    """A local TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class PrivateKafka:
    """One KRaft broker+controller on free ports, in a temporary directory."""

    def __init__(self) -> None:
        stack = Path(os.environ.get("PIPELINE_STACK_DIR", ROOT / ".stack"))
        self.libs = stack / "kafka" / "libs"
        if not (self.libs / ".complete").is_file():
            raise SystemExit(f"no Kafka jars in {self.libs}: run scripts/stack up once")
        self.java = os.environ.get("PIPELINE_STACK_JAVA") or next(
            (java for java in JAVAS if Path(java).is_file()), "java"
        )
        self.port, self.controller_port = free_port(), free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="private-kafka-"))
        self.log_file = self.directory / "kafka.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()
        self._format()

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect."""
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        (self.directory / "server.properties").write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.directory / 'data'}",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=3",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                ]
            )
            + "\n"
        )

    def _format(self) -> None:
        classpath = f"{self.libs}/*"
        cluster = subprocess.run(
            [self.java, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        subprocess.run(
            [
                self.java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster,
                "-c",
                str(self.directory / "server.properties"),
            ],
            check=True,
            capture_output=True,
        )

    def start(self, timeout: float = 120.0) -> None:
        """Start the broker and wait until it accepts connections."""
        log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            [
                self.java,
                "-Xms128m",
                "-Xmx384m",
                f"-Dlog4j2.configurationFile={ROOT / 'scripts/stack.d/kafka-log4j2.properties'}",
                "-cp",
                f"{self.libs}/*",
                "kafka.Kafka",
                str(self.directory / "server.properties"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not (_port_open(self.port) and b"Kafka Server started" in self.log_file.read_bytes()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the private broker did not start; see {self.log_file}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the broker (its data stays for the next start)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None

    def remove(self) -> None:
        """Kill the broker and delete its directory."""
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
