"""Speed of the shop, payment and social generators: a benchmark, not a test.

    eval "$(scripts/stack env)"
    uv run python -m benchmarks.bench_generators --events 300000
    uv run python -m benchmarks.bench_generators --events 300000 --only generate
    uv run python -m benchmarks.bench_generators --events 300000 --only produce --processes 2

For each domain it prints events/s of
- generate: the generator alone, in this process (`planned_events` at rate 0, events
  built and dropped), and
- produce: `pipeline produce <domain> --rate 0 --count N` as a subprocess into fresh topics
  of the configured Kafka (Avro with the registry, keys, label headers, flushed), its wall
  time from start to exit, interpreter start-up included (`--processes N`: run with
  `--processes N`, the CPU of all its processes counted),

each with the CPU seconds it used (per CPU second is what an uncontended core would do) and
the load average around it: on a shared machine the wall-clock figure is the CPU's share.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

from pipeline.application.generators.production import planned_events
from pipeline.application.generators.simulations import SIMULATIONS


def generate(domain: str, events: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to generate `events` events of `domain`."""
    now = datetime.now(UTC)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in planned_events(SIMULATIONS[domain], seed=1, now=now, count=events, rate=0):
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


def produce(domain: str, events: int, processes: int = 1) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of `pipeline produce` into fresh topics."""
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "PIPELINE_LOG_LEVEL": "WARNING",
        "PIPELINE_TOPICS__ECOMMERCE_EVENTS": f"bench-shop-{run}",
        "PIPELINE_TOPICS__TRANSACTIONS": f"bench-tx-{run}",
        "PIPELINE_TOPICS__ACCOUNTS": f"bench-accounts-{run}",
        "PIPELINE_TOPICS__PAYMENT_OUTCOMES": f"bench-outcomes-{run}",
        "PIPELINE_TOPICS__SOCIAL_POSTS": f"bench-posts-{run}",
        "PIPELINE_TOPICS__SOCIAL_ENGAGEMENT": f"bench-engagement-{run}",
    }
    command = [sys.executable, "-m", "pipeline.entrypoints.cli", "produce", domain]
    command += ["--rate", "0", "--count", str(events), "--seed", "1"]
    command += ["--processes", str(processes)] if processes != 1 else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(command, env=env, check=True, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--only", choices=["generate", "produce"])
    parser.add_argument("--domains", nargs="+", default=sorted(SIMULATIONS))
    parser.add_argument("--processes", type=int, default=1, help="of `pipeline produce`")
    args = parser.parse_args()
    if args.only != "generate" and not os.environ.get("PIPELINE_KAFKA__BOOTSTRAP_SERVERS"):
        parser.error('produce needs Kafka: eval "$(scripts/stack env)" first, or --only generate')
    stages = [args.only] if args.only else ["generate", "produce"]
    print(f"{args.events:,} events per run; {os.cpu_count()} CPUs")
    for domain in args.domains:
        for stage in stages:
            load = os.getloadavg()[0]
            label = stage if args.processes == 1 else f"{stage} ×{args.processes}"
            if stage == "generate":
                label = stage
                wall, cpu = generate(domain, args.events)
            else:
                wall, cpu = produce(domain, args.events, args.processes)
            print(
                f"{domain:8} {label:8} {args.events / wall:>9,.0f} events/s wall "
                f"{args.events / cpu:>9,.0f} events/CPU-s  "
                f"(load average {load:.1f} → {os.getloadavg()[0]:.1f})"
            )


if __name__ == "__main__":
    main()
