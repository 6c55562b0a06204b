"""`pipeline bench sensors` run under a few variants (metrics, time-series sinks, tracing…), in
rounds and in a rotating order so that the machine's drift hits them all alike: each round's
figures, then per variant the median of its ratio to the first (the baseline). Imported by
the overhead benchmarks beside it (a sibling script, not a package)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

THROUGHPUT = re.compile(r"throughput: ([\d,]+) readings/s through the worker")
PER_CPU = re.compile(r"([\d,]+) readings per CPU second")


@dataclass(frozen=True)
class Variant:
    """How one variant runs the bench: extra arguments, environment variables set, and the
    prefixes of those removed first (so the caller's shell cannot leak into the baseline)."""

    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    drop: Sequence[str] = ()


def bench(events: int, variant: Variant) -> tuple[float, float]:
    """One `pipeline bench sensors` run: the worker's readings per second of wall-clock time
    and per second of its process's CPU time."""
    command = [sys.executable, "-m", "pipeline.entrypoints.cli", "bench", "sensors"]
    command += ["--events", str(events), *variant.args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(variant.drop))}
    env |= {"PIPELINE_LOG_LEVEL": "WARNING", **variant.env}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall, cpu = THROUGHPUT.search(done.stdout), PER_CPU.search(done.stdout)
    if done.returncode != 0 or wall is None or cpu is None:
        sys.exit(f"pipeline bench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(wall[1].replace(",", "")), float(cpu[1].replace(",", ""))


def run_rounds(variants: Mapping[str, Variant], *, rounds: int, events: int) -> None:
    """Run every variant once per round (each first in turn) and print the figures; the
    first variant is the baseline the others are divided by."""
    names = list(variants)
    base = names[0]
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        order = names[shift:] + names[:shift]
        for name in order:
            runs[name].append(bench(events, variants[name]))
        load1, load5, _ = os.getloadavg()
        base_wall, base_cpu = runs[base][-1]
        figures = ", ".join(
            f"{name} {wall:,.0f}/s ({wall / base_wall:.3f}), "
            f"{cpu:,.0f}/CPU s ({cpu / base_cpu:.3f})"
            for name in names
            for wall, cpu in [runs[name][-1]]
        )
        print(
            f"round {round_ + 1} ({' → '.join(order)}): {figures}; load {load1:.1f} {load5:.1f}",
            flush=True,
        )
    print(f"{rounds} rounds of {events:,} readings, {os.cpu_count()} cores")
    for index, unit in enumerate(("readings/s", "readings per CPU second")):
        baseline = [run[index] for run in runs[base]]
        for name in names[1:]:
            other = [run[index] for run in runs[name]]
            ratios = [b / a for a, b in zip(baseline, other, strict=True)]
            print(
                f"{unit}, {name}/{base} per round: median {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f}); medians {base} "
                f"{statistics.median(baseline):,.0f}, {name} {statistics.median(other):,.0f}"
            )
