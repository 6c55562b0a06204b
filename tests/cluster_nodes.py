"""The brokers of a three-broker stack (`scripts/stack up --brokers 3`), for tests that kill
and restart them: their pids, the partition leaders and the quorum leader, and restarting
what was killed (a plain `scripts/stack up` restarts the recorded shape on its ports)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka import ElectionType, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.services import STACK_HOME, require_service

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "scripts" / "stack"


def service_of(node: int) -> str:
    return "kafka" if node == 1 else f"kafka-{node}"


def node_pid(node: int) -> int:
    home = Path(require_service(STACK_HOME))
    return int((home / "run" / f"{service_of(node)}.pid").read_text().split()[0])


def kill_node(node: int) -> float:
    """SIGKILL broker `node` (a process the stack started); return the time of the kill."""
    pid = node_pid(node)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    deadline = killed_at + 10
    while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
        assert time.monotonic() < deadline, f"broker {node} (pid {pid}) survived SIGKILL"
        time.sleep(0.05)
    return killed_at


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def restart_stack(timeout: float = 240) -> None:
    """Start whatever of the stack is not running (the killed brokers), and wait for it."""
    env = {**os.environ, "PIPELINE_STACK_DIR": require_service(STACK_HOME)}
    subprocess.run(
        [str(STACK), "up"], env=env, check=True, timeout=timeout, capture_output=True, text=True
    )


def partition_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """The broker id leading each partition of `topic`."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_topics(TopicCollection([topic]), request_timeout=20)[topic].result()
    return {p.id: p.leader.id for p in described.partitions if p.leader is not None}


def replicas(bootstrap: str, topic: str) -> dict[int, tuple[list[int], list[int]]]:
    """(replicas, in-sync replicas) of each partition of `topic`."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_topics(TopicCollection([topic]), request_timeout=20)[topic].result()
    return {p.id: ([r.id for r in p.replicas], [r.id for r in p.isr]) for p in described.partitions}


def quorum_leader() -> int:
    """The node id of the KRaft controller quorum's leader (`scripts/stack quorum`)."""
    env = {**os.environ, "PIPELINE_STACK_DIR": require_service(STACK_HOME)}
    out = subprocess.run(
        [str(STACK), "quorum"], env=env, check=True, capture_output=True, text=True, timeout=60
    ).stdout
    match = re.search(r"^LeaderId:\s+(\d+)", out, re.MULTILINE)
    assert match, out
    return int(match[1])


def healthy(bootstrap: str, topic: str, *, leader: int | None = None, timeout: float = 120) -> None:
    """Wait until the three brokers are up and every partition of `topic` has its three
    replicas in sync (and, given `leader`, is led by that broker: a preferred-leader
    election moves them back after a restart)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while True:
        state = replicas(bootstrap, topic)
        in_sync = all(len(isr) == 3 for _, isr in state.values())
        leaders = partition_leaders(bootstrap, topic)
        placed = leader is None or all(node == leader for node in leaders.values())
        if in_sync and placed and len(admin.describe_cluster().result().nodes) == 3:
            return
        assert time.monotonic() < deadline, f"cluster not healthy: {state}, leaders {leaders}"
        if in_sync and not placed:
            admin.elect_leaders(
                ElectionType.PREFERRED, [TopicPartition(topic, p) for p in state]
            ).result()
        time.sleep(1)
