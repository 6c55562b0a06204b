"""How much a worker logs while its broker is down: `pipeline-worker sensors` (main consumer
plus one per retry topic) runs against a private broker, which is SIGKILLed for
`--outage` seconds and started again. Prints the log lines the worker wrote to stderr before,
during and after the outage, and the lines that mention the outage.

    uv run python benchmarks/broker_outage_logs.py --outage 30

Needs the Kafka jars `scripts/stack up` downloads (see private_kafka.py); the worker uses a
SQLite file and the in-memory registry, so nothing else.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from private_kafka import PrivateKafka  # a sibling script, not a package


def lines_of(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the broker is down")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds before and after")
    args = parser.parse_args()

    kafka = PrivateKafka()
    work = Path(tempfile.mkdtemp(prefix="outage-logs-"))
    stderr = work / "worker.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env |= {
        "PIPELINE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PIPELINE_DATABASE__URL": f"sqlite+aiosqlite:///{work / 'outage.db'}",
        "PIPELINE_LOG_LEVEL": "INFO",
    }
    try:
        kafka.start()
        subprocess.run(
            [sys.executable, "-m", "pipeline.entrypoints.cli", "db", "upgrade"], env=env, check=True
        )
        with stderr.open("wb") as sink:
            worker = subprocess.Popen(
                [sys.executable, "-m", "pipeline.entrypoints.worker", "sensors"],
                env=env,
                stderr=sink,
                stdout=subprocess.DEVNULL,
            )
            time.sleep(args.settle)
            before = lines_of(stderr)
            kafka.kill()
            down_at = time.monotonic()
            time.sleep(args.outage)
            during = lines_of(stderr) - before
            kafka.start()
            restart_s = time.monotonic() - down_at - args.outage
            time.sleep(args.settle)
            after = lines_of(stderr) - before - during
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
        text = stderr.read_text(errors="replace").splitlines()
        told = [line for line in text if "reachable" in line or "Connection refused" in line]
        print(f"outage: {args.outage:.0f} s (broker restart took {restart_s:.1f} s more)")
        print(f"worker stderr lines: {before} before, {during} during, {after} after the outage")
        print(f"worker exit code: {code}")
        print(f"lines about the outage: {len(told)}; first 5:")
        for line in told[:5]:
            print(f"  {line[:220]}")
    finally:
        kafka.remove()


if __name__ == "__main__":
    main()
