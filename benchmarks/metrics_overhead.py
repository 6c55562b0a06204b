"""What Prometheus metrics cost a worker: first the telemetry's own time per 10,000-record
batch (in this process), then `pipeline bench sensors` with metrics off and on
(`--metrics-port 0`), alternated so that the machine's drift hits both alike, printing each
run's throughput, the medians and the ratio of each pair.

    eval "$(scripts/stack env)"
    uv run python benchmarks/metrics_overhead.py --pairs 4 --events 100000

A benchmark that prints figures, not a test: the issue's bar is metrics on keeping at least
97% of the throughput with them off."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import timeit

from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry
from pipeline.application.ports import Record, TopicPartition
from pipeline.application.runtime.report import BatchReport

THROUGHPUT = re.compile(r"throughput: ([\d,]+) readings/s through the worker")
PER_CPU = re.compile(r"([\d,]+) readings per CPU second")


def bench(events: int, metrics: bool) -> tuple[float, float]:
    """One `pipeline bench sensors` run: the worker's readings per second of wall-clock time
    and per second of its process's CPU time."""
    command = [sys.executable, "-m", "pipeline.entrypoints.cli", "bench", "sensors"]
    command += ["--events", str(events)]
    if metrics:
        command += ["--metrics-port", "0"]
    env = {**os.environ, "PIPELINE_LOG_LEVEL": "WARNING"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall, cpu = THROUGHPUT.search(done.stdout), PER_CPU.search(done.stdout)
    if done.returncode != 0 or wall is None or cpu is None:
        sys.exit(f"pipeline bench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(wall[1].replace(",", "")), float(cpu[1].replace(",", ""))


def per_batch_ms(size: int = 10_000) -> float:
    """Milliseconds the Prometheus telemetry spends on one batch of `size` records (the
    calls the consumer loop makes per batch), best of five rounds."""
    now = int(time.time() * 1000)
    records = [
        Record(topic="readings", partition=i % 6, offset=i, key=b"k", value=b"v",
               timestamp_ms=now - i % 5_000)
        for i in range(size)
    ]  # fmt: skip
    report = BatchReport(
        records=size,
        written={"readings": size},
        next_offsets={TopicPartition("readings", p): size for p in range(6)},
        commit_seconds=0.2,
    )
    telemetry = PrometheusTelemetry().worker(job="sensors", forwarder=False)

    def batch() -> None:
        telemetry.batch_prepared(0.1)
        telemetry.batch_applied(0.2)
        telemetry.batch_committed(report, records)

    return min(timeit.repeat(batch, number=100, repeat=5)) / 100 * 1000


def summary(name: str, unit: str, off: list[float], on: list[float]) -> str:
    ratios = [b / a for a, b in zip(off, on, strict=True)]
    return (
        f"{name}: median off {statistics.median(off):,.0f} {unit}, "
        f"on {statistics.median(on):,.0f} {unit}; on/off per pair: median "
        f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="off/on pairs (default 4)")
    parser.add_argument("--events", type=int, default=100_000, help="readings per run")
    args = parser.parse_args()
    print(f"telemetry per 10,000-record batch: {per_batch_ms():.2f} ms", flush=True)
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for pair in range(1, args.pairs + 1):
        # Alternate which goes first, so neither always runs on a warmer machine.
        for metrics in (False, True) if pair % 2 else (True, False):
            runs[metrics].append(bench(args.events, metrics))
        (off_wall, off_cpu), (on_wall, on_cpu) = runs[False][-1], runs[True][-1]
        load1, load5, _ = os.getloadavg()
        print(
            f"pair {pair}: readings/s off {off_wall:,.0f}, on {on_wall:,.0f} "
            f"({on_wall / off_wall:.3f}); per CPU second off {off_cpu:,.0f}, on {on_cpu:,.0f} "
            f"({on_cpu / off_cpu:.3f}); load average {load1:.2f} {load5:.2f}",
            flush=True,
        )
    print(f"{args.pairs} pairs of {args.events:,} readings, {os.cpu_count()} cores")
    for index, (name, unit) in enumerate(
        (("throughput", "readings/s"), ("CPU cost", "readings per CPU second"))
    ):
        off = [run[index] for run in runs[False]]
        on = [run[index] for run in runs[True]]
        print(summary(name, unit, off, on))


if __name__ == "__main__":
    main()
