"""What the time-series sinks cost the sensors worker: `pipeline bench sensors` with the sinks
off and on (`PIPELINE_TIMESERIES__URL` = the stack's time-series server), alternated so that
the machine's drift hits both alike, printing each run's throughput, the medians and the
ratio of each pair.

    eval "$(scripts/stack env)"
    uv run python benchmarks/timeseries_overhead.py --pairs 3 --events 100000

A benchmark that prints figures, not a test."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

THROUGHPUT = re.compile(r"throughput: ([\d,]+) readings/s through the worker")
PER_CPU = re.compile(r"([\d,]+) readings per CPU second")


def bench(events: int, timeseries: str | None) -> tuple[float, float]:
    """One `pipeline bench sensors` run: the worker's readings per second of wall-clock time
    and per second of its process's CPU time."""
    command = [sys.executable, "-m", "pipeline.entrypoints.cli", "bench", "sensors"]
    command += ["--events", str(events)]
    env = {**os.environ, "PIPELINE_LOG_LEVEL": "WARNING"}
    env.pop("PIPELINE_TIMESERIES__URL", None)
    if timeseries is not None:
        env |= {"PIPELINE_TIMESERIES__URL": timeseries, "PIPELINE_TIMESERIES__BUCKET": "bench"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall, cpu = THROUGHPUT.search(done.stdout), PER_CPU.search(done.stdout)
    if done.returncode != 0 or wall is None or cpu is None:
        sys.exit(f"pipeline bench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(wall[1].replace(",", "")), float(cpu[1].replace(",", ""))


def summary(name: str, unit: str, off: list[float], on: list[float]) -> str:
    ratios = [b / a for a, b in zip(off, on, strict=True)]
    return (
        f"{name}: median off {statistics.median(off):,.0f} {unit}, "
        f"on {statistics.median(on):,.0f} {unit}; on/off per pair: median "
        f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="off/on pairs (default 3)")
    parser.add_argument("--events", type=int, default=100_000, help="readings per run")
    parser.add_argument(
        "--url",
        default=os.environ.get("PIPELINE_STACK_TIMESERIES_URL"),
        help="the time-series server (default: $PIPELINE_STACK_TIMESERIES_URL)",
    )
    args = parser.parse_args()
    if not args.url:
        sys.exit('no time-series server: eval "$(scripts/stack env)" or pass --url')
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for pair in range(1, args.pairs + 1):
        # Alternate which goes first, so neither always runs on a warmer machine.
        for on in (False, True) if pair % 2 else (True, False):
            runs[on].append(bench(args.events, args.url if on else None))
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
